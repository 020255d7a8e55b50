import NIOCore

/// The `ByteToMessageDecoder` of a remoting connection: loops ``RemotingFrameParser`` over the bytes
/// received. A ``RemotingFrameError`` goes down the pipeline as an error; ``RemotingProtocolErrorHandler``
/// logs it and closes the connection.
public struct RemotingFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RemotingCommand

    public let parser: RemotingFrameParser

    public init(limits: RemotingLimits = RemotingLimits()) {
        self.parser = RemotingFrameParser(limits: limits)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let command = try parser.parseFrame(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(command))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if seenEOF && buffer.readableBytes > 0 {
            let received = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: received)
            throw RemotingFrameError.truncatedFrame(receivedBytes: received)
        }
        return .needMoreData
    }
}
