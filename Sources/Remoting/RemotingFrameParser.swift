import NIOCore

/// Cuts frames of the remoting protocol out of a byte stream.
///
/// ```
/// offset  size  field
///   0      4    length L (UInt32): the bytes that follow this field; 4 + L ≤ maxFrameSizeBytes
///   4      1    version (1)
///   5      1    flags: bit 0 response, bit 1 oneway, others 0
///   6      4    code (Int32): request code, or response code
///  10      4    opaque (Int32): request id, echoed by the response
///  14      2    header count N (UInt16)
///  16      4    header block length H (UInt32)
///  20      H    N × (key length UInt16, key UTF-8, value length UInt16, value UTF-8)
///  20+H    …    body: the remaining L - 16 - H bytes
/// ```
///
/// All integers are big-endian. Every limit is checked as soon as the field that declares it has
/// arrived, before the bytes it announces are waited for: a peer announcing a 4 GiB frame is refused
/// after 4 bytes. The parser keeps no state between frames; a decoder only loops over it.
public struct RemotingFrameParser: Sendable {
    /// The version byte this parser reads and ``RemotingFrameEncoder`` writes.
    public static let protocolVersion: UInt8 = 1
    /// Size of the length field.
    public static let lengthFieldSizeBytes = 4
    /// Bytes after the length field that every frame has: version, flags, code, opaque, header count,
    /// header block length.
    public static let fixedPartSizeBytes = 16
    /// The smallest valid frame: a length field and the fixed part, no headers, no body.
    public static let minimumFrameSizeBytes = lengthFieldSizeBytes + fixedPartSizeBytes

    public var limits: RemotingLimits

    public init(limits: RemotingLimits = RemotingLimits()) {
        self.limits = limits
    }

    /// Parses the frame at the front of `buffer`.
    ///
    /// - Returns: the command, with `buffer`'s reader index moved past the frame; or `nil` when the frame
    ///   is not complete yet, with `buffer` untouched.
    /// - Throws: ``RemotingFrameError`` when the bytes cannot be a valid frame. The stream cannot be
    ///   resynchronised after that: the connection must be closed.
    public func parseFrame(from buffer: inout ByteBuffer) throws(RemotingFrameError) -> RemotingCommand? {
        let start = buffer.readerIndex
        guard let lengthField = buffer.getInteger(at: start, as: UInt32.self) else { return nil }
        let frameSize = Self.lengthFieldSizeBytes + Int(lengthField)
        guard frameSize <= limits.maxFrameSizeBytes else {
            throw .frameTooLarge(sizeBytes: frameSize, limitBytes: limits.maxFrameSizeBytes)
        }
        guard frameSize >= Self.minimumFrameSizeBytes else {
            throw .frameTooShort(sizeBytes: frameSize, minimumBytes: Self.minimumFrameSizeBytes)
        }
        guard buffer.readableBytes >= Self.minimumFrameSizeBytes else { return nil }

        // The fixed part is complete: check what it declares before waiting for the rest.
        let version = buffer.getInteger(at: start + 4, as: UInt8.self)!
        guard version == Self.protocolVersion else { throw .unsupportedVersion(version) }
        let flagsByte = buffer.getInteger(at: start + 5, as: UInt8.self)!
        let flags = RemotingCommand.Flags(rawValue: flagsByte)
        guard RemotingCommand.Flags.known.isSuperset(of: flags), flags != [.response, .oneway] else {
            throw .invalidFlags(flagsByte)
        }
        let code = buffer.getInteger(at: start + 6, as: Int32.self)!
        let opaque = buffer.getInteger(at: start + 10, as: Int32.self)!
        let headerCount = Int(buffer.getInteger(at: start + 14, as: UInt16.self)!)
        guard headerCount <= limits.maxHeaderCount else {
            throw .tooManyHeaders(count: headerCount, limit: limits.maxHeaderCount)
        }
        let headerBlockSize = Int(buffer.getInteger(at: start + 16, as: UInt32.self)!)
        guard headerBlockSize <= limits.maxHeaderBlockBytes else {
            throw .headerBlockTooLarge(sizeBytes: headerBlockSize, limitBytes: limits.maxHeaderBlockBytes)
        }
        let roomForHeaders = frameSize - Self.minimumFrameSizeBytes
        guard headerBlockSize <= roomForHeaders else {
            throw .headerBlockExceedsFrame(headerBlockBytes: headerBlockSize, availableBytes: roomForHeaders)
        }
        guard buffer.readableBytes >= frameSize else { return nil }

        let headerBlockStart = start + Self.minimumFrameSizeBytes
        let headers = try Self.parseHeaders(
            in: buffer, from: headerBlockStart, size: headerBlockSize, count: headerCount, frameStart: start
        )
        let bodyStart = headerBlockStart + headerBlockSize
        let body = buffer.getSlice(at: bodyStart, length: start + frameSize - bodyStart)!
        buffer.moveReaderIndex(to: start + frameSize)
        return RemotingCommand(code: code, opaque: opaque, flags: flags, headers: headers, body: body)
    }

    private static func parseHeaders(
        in buffer: ByteBuffer, from blockStart: Int, size: Int, count: Int, frameStart: Int
    ) throws(RemotingFrameError) -> [String: String] {
        var headers: [String: String] = [:]
        headers.reserveCapacity(count)
        let blockEnd = blockStart + size
        var index = blockStart
        for headerIndex in 0..<count {
            let entryOffset = index - frameStart
            guard let key = readField(buffer, at: &index, end: blockEnd) else {
                throw .headerTruncated(index: headerIndex, offset: entryOffset)
            }
            guard let value = readField(buffer, at: &index, end: blockEnd) else {
                throw .headerTruncated(index: headerIndex, offset: entryOffset)
            }
            guard let keyText = utf8String(key), let valueText = utf8String(value) else {
                throw .headerNotUTF8(index: headerIndex, offset: entryOffset)
            }
            guard !keyText.isEmpty else { throw .emptyHeaderKey(index: headerIndex, offset: entryOffset) }
            guard headers.updateValue(valueText, forKey: keyText) == nil else { throw .duplicateHeader(key: keyText) }
        }
        guard index == blockEnd else {
            throw .headerBlockLengthMismatch(declaredBytes: size, usedBytes: index - blockStart)
        }
        return headers
    }

    /// Reads a 2-byte length and that many bytes, not past `end`.
    private static func readField(_ buffer: ByteBuffer, at index: inout Int, end: Int) -> ByteBufferView? {
        guard index + 2 <= end, let length = buffer.getInteger(at: index, as: UInt16.self) else { return nil }
        let fieldStart = index + 2
        guard fieldStart + Int(length) <= end, let bytes = buffer.viewBytes(at: fieldStart, length: Int(length)) else { return nil }
        index = fieldStart + Int(length)
        return bytes
    }

    /// The bytes as a string, or `nil` when they are not valid UTF-8 (decoding would silently replace
    /// invalid sequences, so the result is compared with the input).
    private static func utf8String(_ bytes: ByteBufferView) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        return text.utf8.elementsEqual(bytes) ? text : nil
    }
}
