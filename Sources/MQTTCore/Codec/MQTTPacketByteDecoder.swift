import NIOCore

/// Frames a TCP byte stream into `MQTTPacket`s: a thin `ByteToMessageDecoder` that loops over
/// `MQTTPacketDecoder`. Use it as `ByteToMessageHandler(MQTTPacketByteDecoder(...))`.
///
/// On a decode error the `MQTTDecodeError` travels down the pipeline as an error; deciding what to say to
/// the peer (CONNACK or DISCONNECT with the reason code, or just closing) is the protocol handler's job.
public struct MQTTPacketByteDecoder: ByteToMessageDecoder {
    public typealias InboundOut = MQTTPacket

    public var decoder: MQTTPacketDecoder

    public init(decoder: MQTTPacketDecoder) {
        self.decoder = decoder
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let packet = try decoder.decode(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(packet))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial packet at EOF is dropped: the peer closed mid-packet and there is no one left to tell.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Encodes outbound `MQTTPacket`s. A PUBLISH whose payload is at least `zeroCopyThresholdBytes` is
/// written as two buffers, the header and the untouched payload slice, which the channel gathers into
/// one `writev`; smaller payloads are cheaper to copy than to write separately.
public final class MQTTPacketEncoderHandler: ChannelOutboundHandler {
    public typealias OutboundIn = MQTTPacket
    public typealias OutboundOut = ByteBuffer

    /// Set by the protocol handler once the version (and the peer's Maximum Packet Size) is known.
    public var encoder: MQTTPacketEncoder
    public let zeroCopyThresholdBytes: Int

    public init(encoder: MQTTPacketEncoder, zeroCopyThresholdBytes: Int = 1024) {
        self.encoder = encoder
        self.zeroCopyThresholdBytes = zeroCopyThresholdBytes
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let packet = Self.unwrapOutboundIn(data)
        do {
            if case .publish(let publish) = packet, publish.payload.readableBytes >= zeroCopyThresholdBytes {
                var header = context.channel.allocator.buffer(capacity: 64)
                try encoder.encodePublishHeader(publish, into: &header)
                context.write(Self.wrapOutboundOut(header), promise: nil)
                context.write(Self.wrapOutboundOut(publish.payload), promise: promise)
                return
            }
            var buffer = context.channel.allocator.buffer(capacity: 0)
            try encoder.encode(packet, into: &buffer)
            context.write(Self.wrapOutboundOut(buffer), promise: promise)
        } catch {
            promise?.fail(error)
        }
    }
}
