import NIOCore

/// Writes ``RemotingCommand``s in the frame format of ``RemotingFrameParser``.
///
/// Headers are written sorted by key, so a command always encodes to the same bytes.
public enum RemotingFrameEncoder {
    /// The size of `command`'s frame, counting the length field.
    public static func frameSize(of command: RemotingCommand) -> Int {
        RemotingFrameParser.minimumFrameSizeBytes + headerBlockSize(of: command) + command.body.readableBytes
    }

    private static func headerBlockSize(of command: RemotingCommand) -> Int {
        command.headers.reduce(0) { $0 + 4 + $1.key.utf8.count + $1.value.utf8.count }
    }

    /// Checks that `command` can be sent to a peer that enforces `limits`.
    public static func validate(_ command: RemotingCommand, limits: RemotingLimits) throws(RemotingFrameError) {
        guard command.headers.count <= limits.maxHeaderCount else {
            throw .tooManyHeaders(count: command.headers.count, limit: limits.maxHeaderCount)
        }
        var headerBlockSize = 0
        for (key, value) in command.headers {
            guard !key.isEmpty else { throw .emptyHeaderKey(index: 0, offset: 0) }
            for field in [key.utf8.count, value.utf8.count] where field > Int(UInt16.max) {
                throw .headerFieldTooLong(key: key, sizeBytes: field)
            }
            headerBlockSize += 4 + key.utf8.count + value.utf8.count
        }
        guard headerBlockSize <= limits.maxHeaderBlockBytes else {
            throw .headerBlockTooLarge(sizeBytes: headerBlockSize, limitBytes: limits.maxHeaderBlockBytes)
        }
        let frameSize = RemotingFrameParser.minimumFrameSizeBytes + headerBlockSize + command.body.readableBytes
        guard frameSize <= limits.maxFrameSizeBytes else {
            throw .frameTooLarge(sizeBytes: frameSize, limitBytes: limits.maxFrameSizeBytes)
        }
        let flags = command.flags
        guard RemotingCommand.Flags.known.isSuperset(of: flags), flags != [.response, .oneway] else {
            throw .invalidFlags(flags.rawValue)
        }
    }

    /// Appends `command`'s frame to `buffer` after checking it against `limits`.
    public static func encode(_ command: RemotingCommand, into buffer: inout ByteBuffer, limits: RemotingLimits) throws(RemotingFrameError) {
        try validate(command, limits: limits)
        let headerBlockSize = headerBlockSize(of: command)
        let frameSize = RemotingFrameParser.minimumFrameSizeBytes + headerBlockSize + command.body.readableBytes
        buffer.reserveCapacity(minimumWritableBytes: frameSize)
        buffer.writeInteger(UInt32(frameSize - RemotingFrameParser.lengthFieldSizeBytes))
        buffer.writeInteger(RemotingFrameParser.protocolVersion)
        buffer.writeInteger(command.flags.rawValue)
        buffer.writeInteger(command.code)
        buffer.writeInteger(command.opaque)
        buffer.writeInteger(UInt16(command.headers.count))
        buffer.writeInteger(UInt32(headerBlockSize))
        for key in command.headers.keys.sorted() {
            let value = command.headers[key]!
            buffer.writeInteger(UInt16(key.utf8.count))
            buffer.writeString(key)
            buffer.writeInteger(UInt16(value.utf8.count))
            buffer.writeString(value)
        }
        buffer.writeImmutableBuffer(command.body)
    }

    /// `command`'s frame in a new buffer.
    public static func encode(_ command: RemotingCommand, limits: RemotingLimits) throws(RemotingFrameError) -> ByteBuffer {
        var buffer = ByteBuffer()
        try encode(command, into: &buffer, limits: limits)
        return buffer
    }
}
