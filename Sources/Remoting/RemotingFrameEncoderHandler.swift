import NIOCore

/// Encodes outgoing ``RemotingCommand``s; a command over the limits fails its write with a
/// ``RemotingFrameError`` and nothing is sent.
public struct RemotingFrameEncoderHandler: MessageToByteEncoder {
    public typealias OutboundIn = RemotingCommand

    public let limits: RemotingLimits

    public init(limits: RemotingLimits = RemotingLimits()) {
        self.limits = limits
    }

    public func encode(data: RemotingCommand, out: inout ByteBuffer) throws {
        try RemotingFrameEncoder.encode(data, into: &out, limits: limits)
    }
}
