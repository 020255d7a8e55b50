import NIOCore
import Remoting
import Testing

/// The frame format of docs/protocol.md, byte for byte, and one test per rejection rule.
@Suite("Remoting frame parser")
struct RemotingFrameParserTests {
    /// A GET_KV_CONFIG-like request, written out by hand from the layout in docs/protocol.md.
    static let goldenRequest = RemotingCommand(
        code: 101, opaque: 7, flags: [], headers: ["namespace": "LMQ", "key": "k"], body: ByteBuffer(string: "v")
    )
    static let goldenBytes: [UInt8] = [
        0x00, 0x00, 0x00, 0x29,  // length: 41 bytes follow
        0x01,  // version
        0x00,  // flags: request
        0x00, 0x00, 0x00, 0x65,  // code 101
        0x00, 0x00, 0x00, 0x07,  // opaque 7
        0x00, 0x02,  // 2 headers
        0x00, 0x00, 0x00, 0x18,  // header block: 24 bytes
        0x00, 0x03, 0x6B, 0x65, 0x79, 0x00, 0x01, 0x6B,  // "key" = "k" (sorted first)
        0x00, 0x09, 0x6E, 0x61, 0x6D, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x00, 0x03, 0x4C, 0x4D, 0x51,  // "namespace" = "LMQ"
        0x76,  // body "v"
    ]

    /// A response to it: flags 0x01, code KEY_NOT_FOUND (22), a remark, no body.
    static let goldenResponse = RemotingCommand(code: 22, opaque: 7, flags: .response, headers: ["remark": "no"], body: ByteBuffer())
    static let goldenResponseBytes: [UInt8] = [
        0x00, 0x00, 0x00, 0x1C,  // 28 bytes follow
        0x01, 0x01,  // version, flags: response
        0x00, 0x00, 0x00, 0x16,  // code 22
        0x00, 0x00, 0x00, 0x07,  // opaque 7
        0x00, 0x01, 0x00, 0x00, 0x00, 0x0C,  // 1 header, 12 bytes
        0x00, 0x06, 0x72, 0x65, 0x6D, 0x61, 0x72, 0x6B, 0x00, 0x02, 0x6E, 0x6F,  // "remark" = "no"
    ]

    let parser = RemotingFrameParser()

    func parse(_ bytes: [UInt8], limits: RemotingLimits = RemotingLimits()) throws(RemotingFrameError) -> RemotingCommand? {
        var buffer = ByteBuffer(bytes: bytes)
        return try RemotingFrameParser(limits: limits).parseFrame(from: &buffer)
    }

    /// `bytes` with the big-endian integer at `offset` replaced.
    func patched<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, _ value: T) -> [UInt8] {
        var buffer = ByteBuffer(bytes: bytes)
        buffer.setInteger(value, at: offset)
        return Array(buffer.readableBytesView)
    }

    @Test("encoding gives the golden bytes, and they decode to the same command")
    func golden() throws {
        #expect(Array(try RemotingFrameEncoder.encode(Self.goldenRequest, limits: RemotingLimits()).readableBytesView) == Self.goldenBytes)
        #expect(try parse(Self.goldenBytes) == Self.goldenRequest)
        #expect(Array(try RemotingFrameEncoder.encode(Self.goldenResponse, limits: RemotingLimits()).readableBytesView) == Self.goldenResponseBytes)
        let response = try #require(try parse(Self.goldenResponseBytes))
        #expect(response == Self.goldenResponse)
        #expect(response.isResponse && response.responseCode == .keyNotFound && response.remark == "no")
        #expect(RemotingFrameEncoder.frameSize(of: Self.goldenRequest) == Self.goldenBytes.count)
    }

    @Test("fed one byte at a time, nothing is returned until the last byte, and the buffer is left untouched")
    func dripFeed() throws {
        var buffer = ByteBuffer()
        let twoFrames = Self.goldenBytes + Self.goldenResponseBytes
        var decoded: [RemotingCommand] = []
        for byte in twoFrames {
            buffer.writeInteger(byte)
            let before = buffer.readerIndex
            if let command = try parser.parseFrame(from: &buffer) {
                decoded.append(command)
            } else {
                #expect(buffer.readerIndex == before)
            }
            if decoded.count == 0 { #expect(buffer.readableBytes <= Self.goldenBytes.count) }
        }
        #expect(decoded == [Self.goldenRequest, Self.goldenResponse])
        #expect(buffer.readableBytes == 0)
    }

    @Test("several frames in one read come out in order; the body is a slice of the frame")
    func severalFrames() throws {
        var buffer = ByteBuffer(bytes: Self.goldenBytes + Self.goldenBytes + Self.goldenResponseBytes)
        #expect(try parser.parseFrame(from: &buffer) == Self.goldenRequest)
        #expect(try parser.parseFrame(from: &buffer)?.bodyString == "v")
        #expect(try parser.parseFrame(from: &buffer) == Self.goldenResponse)
        #expect(try parser.parseFrame(from: &buffer) == nil)
    }

    @Test("an empty frame (no headers, no body) and a large body round-trip")
    func roundTrips() throws {
        let empty = RemotingCommand(code: -5, opaque: Int32.min, flags: .oneway)
        #expect(try parse(Array(try RemotingFrameEncoder.encode(empty, limits: RemotingLimits()).readableBytesView)) == empty)
        let large = RemotingCommand(code: 1, headers: ["ü": "ß✓"], body: ByteBuffer(repeating: 0xAB, count: 1_000_000))
        #expect(try parse(Array(try RemotingFrameEncoder.encode(large, limits: RemotingLimits()).readableBytesView)) == large)
    }

    // MARK: Rejections

    @Test("an oversized length is rejected from the 4 length bytes alone, before the frame is buffered")
    func oversizedLength() {
        #expect(throws: RemotingFrameError.frameTooLarge(sizeBytes: 4 + 0xFFFF_FFFF, limitBytes: 16 * 1024 * 1024)) {
            try parse([0xFF, 0xFF, 0xFF, 0xFF])
        }
        let limits = RemotingLimits(maxFrameSizeBytes: 40)
        #expect(throws: RemotingFrameError.frameTooLarge(sizeBytes: 45, limitBytes: 40)) {
            try parse(Array(Self.goldenBytes.prefix(4)), limits: limits)
        }
    }

    @Test("a length shorter than the fixed part is rejected")
    func tooShort() {
        #expect(throws: RemotingFrameError.frameTooShort(sizeBytes: 19, minimumBytes: 20)) {
            try parse([0x00, 0x00, 0x00, 0x0F])
        }
    }

    @Test("an unknown version is rejected")
    func badVersion() {
        #expect(throws: RemotingFrameError.unsupportedVersion(2)) { try parse(patched(Self.goldenBytes, at: 4, UInt8(2))) }
    }

    @Test("reserved flag bits, and oneway on a response, are rejected")
    func badFlags() {
        #expect(throws: RemotingFrameError.invalidFlags(0x04)) { try parse(patched(Self.goldenBytes, at: 5, UInt8(0x04))) }
        #expect(throws: RemotingFrameError.invalidFlags(0x03)) { try parse(patched(Self.goldenBytes, at: 5, UInt8(0x03))) }
    }

    @Test("a header count over the limit is rejected once the fixed part has arrived")
    func tooManyHeaders() {
        let limits = RemotingLimits(maxHeaderCount: 1)
        #expect(throws: RemotingFrameError.tooManyHeaders(count: 2, limit: 1)) {
            try parse(Array(Self.goldenBytes.prefix(20)), limits: limits)
        }
    }

    @Test("a header block over the limit is rejected once the fixed part has arrived")
    func headerBlockTooLarge() {
        let limits = RemotingLimits(maxHeaderBlockBytes: 23)
        #expect(throws: RemotingFrameError.headerBlockTooLarge(sizeBytes: 24, limitBytes: 23)) {
            try parse(Array(Self.goldenBytes.prefix(20)), limits: limits)
        }
    }

    @Test("a header block longer than the frame is rejected")
    func headerBlockExceedsFrame() {
        #expect(throws: RemotingFrameError.headerBlockExceedsFrame(headerBlockBytes: 26, availableBytes: 25)) {
            try parse(patched(Self.goldenBytes, at: 16, UInt32(26)))
        }
    }

    @Test("a header running past its block is rejected as truncated")
    func headerTruncated() {
        // Header block shortened to 20 bytes: the second header's value ("LMQ") no longer fits.
        #expect(throws: RemotingFrameError.headerTruncated(index: 1, offset: 28)) {
            try parse(patched(Self.goldenBytes, at: 16, UInt32(20)))
        }
        // A key length pointing past the block.
        #expect(throws: RemotingFrameError.headerTruncated(index: 0, offset: 20)) {
            try parse(patched(Self.goldenBytes, at: 20, UInt16(200)))
        }
    }

    @Test("headers that end before the declared block length are rejected")
    func headerBlockMismatch() {
        // Declared 2 headers, but the block is 25 bytes (24 used + the body byte).
        #expect(throws: RemotingFrameError.headerBlockLengthMismatch(declaredBytes: 25, usedBytes: 24)) {
            try parse(patched(Self.goldenBytes, at: 16, UInt32(25)))
        }
        #expect(throws: RemotingFrameError.headerBlockLengthMismatch(declaredBytes: 24, usedBytes: 8)) {
            try parse(patched(Self.goldenBytes, at: 14, UInt16(1)))
        }
    }

    @Test("a header that is not UTF-8 is rejected")
    func notUTF8() {
        var bytes = Self.goldenBytes
        bytes[22] = 0xFF  // first byte of "key"
        #expect(throws: RemotingFrameError.headerNotUTF8(index: 0, offset: 20)) { try parse(bytes) }
    }

    @Test("an empty header key is rejected")
    func emptyKey() {
        let command = RemotingCommand(code: 1, headers: ["x": "y"])
        var bytes = Array(try! RemotingFrameEncoder.encode(command, limits: RemotingLimits()).readableBytesView)
        // Rewrite header "x"="y" as ""="xy": key length 0, value length 2, same block size.
        bytes.replaceSubrange(20..<26, with: [0x00, 0x00, 0x00, 0x02, 0x78, 0x79])
        #expect(throws: RemotingFrameError.emptyHeaderKey(index: 0, offset: 20)) { try parse(bytes) }
    }

    @Test("a duplicate header key is rejected")
    func duplicateHeader() {
        var bytes = Self.goldenBytes
        // Replace the second header with a copy of the first.
        bytes.replaceSubrange(28..<44, with: [0x00, 0x03, 0x6B, 0x65, 0x79, 0x00, 0x01, 0x6B])
        bytes = patched(bytes, at: 16, UInt32(16))
        bytes = patched(bytes, at: 0, UInt32(bytes.count - 4))
        #expect(throws: RemotingFrameError.duplicateHeader(key: "key")) { try parse(bytes) }
    }

    @Test("the encoder refuses what a peer with the same limits would reject")
    func encoderLimits() {
        let big = RemotingCommand(code: 1, body: ByteBuffer(repeating: 0, count: 100))
        #expect(throws: RemotingFrameError.frameTooLarge(sizeBytes: 120, limitBytes: 64)) {
            try RemotingFrameEncoder.encode(big, limits: RemotingLimits(maxFrameSizeBytes: 64))
        }
        let longValue = RemotingCommand(code: 1, headers: ["k": String(repeating: "x", count: 70_000)])
        #expect(throws: RemotingFrameError.headerFieldTooLong(key: "k", sizeBytes: 70_000)) {
            try RemotingFrameEncoder.encode(longValue, limits: RemotingLimits(maxHeaderBlockBytes: 1_000_000))
        }
        let many = RemotingCommand(code: 1, headers: Dictionary(uniqueKeysWithValues: (0..<3).map { ("h\($0)", "") }))
        #expect(throws: RemotingFrameError.tooManyHeaders(count: 3, limit: 2)) {
            try RemotingFrameEncoder.encode(many, limits: RemotingLimits(maxHeaderCount: 2))
        }
    }

    @Test("addresses parse as host:port, including bracketed IPv6; anything else is refused")
    func addresses() {
        #expect(RemotingAddress(parsing: "127.0.0.1:9876") == RemotingAddress(host: "127.0.0.1", port: 9876))
        #expect(RemotingAddress(parsing: " localhost:1 ") == RemotingAddress(host: "localhost", port: 1))
        #expect(RemotingAddress(parsing: "[::1]:9876") == RemotingAddress(host: "::1", port: 9876))
        #expect(RemotingAddress(parsing: "[::1]:9876")?.description == "[::1]:9876")
        for bad in ["", "host", "host:", ":9876", "host:0", "host:65536", "host:12a", "::1:9876", "a b:1", "[::1]9876"] {
            #expect(RemotingAddress(parsing: bad) == nil, "\(bad) should not parse")
        }
    }
}
