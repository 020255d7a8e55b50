import MQTTCore
import NIOCore

/// Why a client did not become ready.
enum BenchClientError: Error, Sendable, CustomStringConvertible {
    case connectRefused(MQTTReasonCode)
    case subscribeRefused(MQTTReasonCode)
    case closedBeforeReady
    case timedOut
    case unexpectedPacket(MQTTPacketType)

    var description: String {
        switch self {
        case .connectRefused(let code): return "CONNACK refused the connection (reason 0x\(String(code.rawValue, radix: 16)))"
        case .subscribeRefused(let code): return "SUBACK refused a filter (reason 0x\(String(code.rawValue, radix: 16)))"
        case .closedBeforeReady: return "the connection closed before CONNACK / SUBACK"
        case .timedOut: return "no CONNACK / SUBACK in time"
        case .unexpectedPacket(let type): return "the server sent \(type) before CONNACK"
        }
    }
}

/// One simulated client on one channel: sends CONNECT (and SUBSCRIBE), then publishes at its rate or as
/// fast as the connection takes, acknowledges what it receives, and stamps and checks payloads.
///
/// It encodes with `MQTTPacketEncoder` straight into `ByteBuffer`s rather than through
/// `MQTTPacketEncoderHandler`, so that a burst of PUBLISHes goes out as one buffer and one `write`: the
/// load tool must not be what limits the figures. Decoding goes through `MQTTPacketByteDecoder`.
final class BenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = MQTTPacket
    typealias OutboundOut = ByteBuffer

    /// Most PUBLISHes encoded into one buffer per turn of the event loop when the rate is unlimited.
    static let burstSize = 64

    private enum Phase {
        case connecting
        case subscribing
        case ready
        case closing
        case closed
    }

    let spec: ClientSpec
    private let session: SessionSettings
    private let stats: LoopStats
    private let readyPromise: EventLoopPromise<NIOLoopBound<BenchClientHandler>>
    private let encoder: MQTTPacketEncoder
    private var phase: Phase = .connecting
    private var context: ChannelHandlerContext?
    private var connectStartedNanos: UInt64 = 0
    private var timeoutTask: Scheduled<Void>?
    private var pingTask: RepeatedTask?
    private var needsFlush = false

    // Subscriber side: one tracker per publisher id.
    private var trackers: [SequenceTracker] = []
    /// Received since the last read batch ended; handed to the delivery gate then.
    private var receivedInBatch = 0

    // Publisher side.
    private var publishTemplate: PublishPacket?
    private(set) var publishedCount: UInt64 = 0
    private var inflight = 0
    private var publishing = false
    private var publishStartedNanos: UInt64 = 0
    private var rateTask: RepeatedTask?
    private var pumpScheduled = false

    init(spec: ClientSpec, session: SessionSettings, stats: LoopStats, readyPromise: EventLoopPromise<NIOLoopBound<BenchClientHandler>>) {
        self.spec = spec
        self.session = session
        self.stats = stats
        self.readyPromise = readyPromise
        self.encoder = MQTTPacketEncoder(protocolVersion: session.protocolVersion)
        if let publish = spec.publish {
            precondition(publish.payloadSizeBytes >= BenchPayload.stampSizeBytes)
            // Only the size of the template's payload matters: the header is computed from it, and each
            // message's stamp and padding are written after the header.
            var zeros = ByteBufferAllocator().buffer(capacity: publish.payloadSizeBytes)
            zeros.writeRepeatingByte(0, count: publish.payloadSizeBytes)
            publishTemplate = PublishPacket(topicName: publish.topicName, payload: zeros, qos: publish.qos, retain: publish.retain)
        }
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        connectStartedNanos = monotonicNanoseconds()
        stats.counters.connectAttempts += 1
        let connect = ConnectPacket(
            protocolVersion: session.protocolVersion,
            clientIdentifier: spec.clientIdentifier,
            cleanStart: session.cleanStart,
            keepAliveSeconds: session.keepAliveSeconds,
            username: session.username,
            password: session.password.map { ByteBuffer(string: $0) }
        )
        send(.connect(connect), flush: true)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeoutTask = context.eventLoop.scheduleTask(in: session.connectTimeout) {
            loopBound.value.failBeforeReady(.timedOut)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch phase {
        case .connecting, .subscribing:
            failBeforeReady(.closedBeforeReady)
        case .ready:
            stats.counters.unexpectedCloses += 1
        case .closing, .closed:
            break
        }
        phase = .closed
        cancelTimers()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A decode error or a reset: the connection is of no further use. channelInactive counts it.
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, publishing, spec.publish?.ratePerSecond == nil {
            schedulePump()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if receivedInBatch > 0 {
            spec.deliveryGate?.delivered(receivedInBatch)
            receivedInBatch = 0
        }
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        switch packet {
        case .publish(let publish):
            received(publish)
        case .pubAck:
            acknowledged()
        case .pubRec(let pubRec):
            // QoS 2, second step: release the message ([MQTT-4.3.3-3]).
            send(.pubRel(PubAckPacket(packetIdentifier: pubRec.packetIdentifier)), flush: false)
        case .pubRel(let pubRel):
            send(.pubComp(PubAckPacket(packetIdentifier: pubRel.packetIdentifier)), flush: false)
        case .pubComp:
            acknowledged()
        case .connAck(let connAck):
            connAckReceived(connAck)
        case .subAck(let subAck):
            subAckReceived(subAck)
        case .pingResp, .unsubAck:
            break
        case .disconnect:
            // The server says why it closes; channelInactive counts the close.
            break
        case .connect, .subscribe, .unsubscribe, .pingReq, .auth:
            // Client-to-server packets: a broken server. Closing shows up as an unexpected close.
            if phase == .connecting { failBeforeReady(.unexpectedPacket(packet.type)) }
            context.close(promise: nil)
        }
    }

    // MARK: - Connecting

    private func connAckReceived(_ connAck: ConnAckPacket) {
        guard phase == .connecting else { return }
        guard connAck.reasonCode == .success else {
            failBeforeReady(.connectRefused(connAck.reasonCode))
            return
        }
        stats.counters.connected += 1
        let micros = (monotonicNanoseconds() - connectStartedNanos) / 1000
        stats.connectLatencyMicros.record(min(micros, LatencyHistogram.highestMicros))
        startPings()
        if let subscribe = spec.subscribe {
            phase = .subscribing
            let subscriptions = subscribe.topicFilters.map { Subscription(topicFilter: $0, maximumQoS: subscribe.qos) }
            send(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: subscriptions)), flush: true)
        } else {
            becomeReady()
        }
    }

    private func subAckReceived(_ subAck: SubAckPacket) {
        guard phase == .subscribing else { return }
        if let refusal = subAck.reasonCodes.first(where: { $0.rawValue >= 0x80 }) {
            failBeforeReady(.subscribeRefused(refusal))
            return
        }
        becomeReady()
    }

    private func becomeReady() {
        guard let context else { return }
        phase = .ready
        timeoutTask?.cancel()
        timeoutTask = nil
        readyPromise.succeed(NIOLoopBound(self, eventLoop: context.eventLoop))
    }

    private func failBeforeReady(_ error: BenchClientError) {
        switch phase {
        case .connecting, .subscribing:
            stats.counters.connectFailures += 1
            phase = .closing
            readyPromise.fail(error)
            context?.close(promise: nil)
        case .ready, .closing, .closed:
            break
        }
    }

    private func startPings() {
        guard session.keepAliveSeconds > 0, let context else { return }
        // Half the keep alive leaves room for a slow PINGRESP ([MQTT-3.1.2-23] lets the server close
        // after 1.5 keep-alive periods of silence).
        let interval = TimeAmount.milliseconds(Int64(session.keepAliveSeconds) * 500)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.send(.pingReq, flush: true)
        }
    }

    private func cancelTimers() {
        timeoutTask?.cancel()
        timeoutTask = nil
        pingTask?.cancel()
        pingTask = nil
        rateTask?.cancel()
        rateTask = nil
    }

    // MARK: - Receiving

    private func received(_ publish: PublishPacket) {
        stats.counters.received += 1
        receivedInBatch += 1
        stats.counters.payloadBytesReceived += UInt64(publish.payload.readableBytes)
        if let stamp = BenchPayload.read(from: publish.payload) {
            let now = wallClockNanoseconds()
            stats.recordLatency(micros: now > stamp.sendTimeNanos ? (now - stamp.sendTimeNanos) / 1000 : 0)
            let publisher = Int(stamp.publisherID)
            if publisher >= trackers.count {
                trackers.append(contentsOf: repeatElement(SequenceTracker(), count: publisher + 1 - trackers.count))
            }
            switch trackers[publisher].record(stamp.sequence) {
            case .inOrder, .ahead:
                stats.counters.receivedUnique += 1
            case .late:
                stats.counters.receivedUnique += 1
                stats.counters.reordered += 1
            case .duplicate:
                stats.counters.duplicates += 1
            }
        } else {
            stats.counters.foreign += 1
        }
        switch publish.qos {
        case .atMostOnce:
            break
        case .atLeastOnce:
            if let id = publish.packetIdentifier { send(.pubAck(PubAckPacket(packetIdentifier: id)), flush: false) }
        case .exactlyOnce:
            if let id = publish.packetIdentifier { send(.pubRec(PubAckPacket(packetIdentifier: id)), flush: false) }
        }
    }

    /// Messages that never arrived between the first and the highest sequence number seen, over every
    /// publisher: the loss estimate when the publishers' counts are not known.
    var missingCount: UInt64 {
        trackers.reduce(0) { $0 + $1.missingCount }
    }

    // MARK: - Publishing

    /// Starts publishing; called on the channel's event loop once every client of the run is ready.
    func startPublishing() {
        guard let publish = spec.publish, phase == .ready, !publishing, let context else { return }
        publishing = true
        publishStartedNanos = monotonicNanoseconds()
        if let rate = publish.ratePerSecond {
            // One tick per message up to 1,000/s; above that each 1 ms tick sends what is due.
            let intervalNanos = max(1_000_000, Int64(1e9 / rate))
            // Spread the first ticks of many publishers over one interval instead of all at once.
            let initialDelay = TimeAmount.nanoseconds(Int64.random(in: 0..<intervalNanos))
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            rateTask = context.eventLoop.scheduleRepeatedTask(initialDelay: initialDelay, delay: .nanoseconds(intervalNanos)) { _ in
                loopBound.value.sendDue()
            }
        } else {
            sendDue()
        }
    }

    /// Stops publishing; acknowledgements still in flight are still counted.
    func stopPublishing() {
        publishing = false
        rateTask?.cancel()
        rateTask = nil
    }

    /// Sends DISCONNECT and closes; the returned future completes when the channel is closed.
    func disconnect() -> EventLoopFuture<Void>? {
        stopPublishing()
        guard let context else { return nil }
        switch phase {
        case .ready, .connecting, .subscribing:
            phase = .closing
            send(.disconnect(DisconnectPacket()), flush: true)
            context.close(promise: nil)
        case .closing, .closed:
            break
        }
        return context.channel.closeFuture
    }

    private func acknowledged() {
        stats.counters.acknowledged += 1
        if inflight > 0 { inflight -= 1 }
        if publishing, spec.publish?.ratePerSecond == nil { schedulePump() }
    }

    private func schedulePump() {
        guard !pumpScheduled, let context else { return }
        pumpScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // Through the task queue, not directly: reads and writes of other channels get their turn.
        context.eventLoop.execute {
            loopBound.value.pumpScheduled = false
            loopBound.value.sendDue()
        }
    }

    /// Sends what is due now: at a fixed rate, what the clock says is behind; unlimited, a burst.
    /// Bounded by the message limit, the inflight window and the channel's writability.
    private func sendDue() {
        guard publishing, let publish = spec.publish, var template = publishTemplate, let context else { return }
        var due: UInt64
        if let rate = publish.ratePerSecond {
            let elapsedNanos = monotonicNanoseconds() - publishStartedNanos
            let target = UInt64(Double(elapsedNanos) * rate / 1e9) + 1
            due = target > publishedCount ? target - publishedCount : 0
        } else {
            due = UInt64(Self.burstSize)
        }
        if let limit = publish.messageLimit {
            due = min(due, limit > publishedCount ? limit - publishedCount : 0)
            if due == 0 && publishedCount >= limit {
                stopPublishing()
                return
            }
        }
        if publish.qos != .atMostOnce {
            due = min(due, UInt64(max(0, publish.inflightLimit - inflight)))
        }
        guard due > 0, context.channel.isWritable else { return }
        if publish.ratePerSecond == nil, let gate = spec.deliveryGate {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            due = UInt64(gate.allowance(wanted: Int(due)) {
                loop.execute { loopBound.value.sendDue() }
            })
            guard due > 0 else { return }
        }

        let count = Int(due)
        var buffer = context.channel.allocator.buffer(capacity: count * (publish.payloadSizeBytes + publish.topicName.utf8.count + 16))
        let now = wallClockNanoseconds()
        for _ in 0..<count {
            if publish.qos != .atMostOnce {
                // Sequential identifiers; with the inflight window far below 65,535 an identifier is
                // never reused while its message is unacknowledged ([MQTT-2.2.1-3]).
                template.packetIdentifier = UInt16(truncatingIfNeeded: publishedCount % 65_535 + 1)
                inflight += 1
            }
            do {
                try encoder.encodePublishHeader(template, into: &buffer)
            } catch {
                // A topic or payload the encoder refuses would fail every time: stop this publisher.
                stopPublishing()
                return
            }
            BenchPayload(sendTimeNanos: now, publisherID: publish.publisherID, sequence: publishedCount)
                .write(into: &buffer, payloadSizeBytes: publish.payloadSizeBytes)
            publishedCount += 1
        }
        stats.counters.published += UInt64(count)
        spec.deliveryGate?.published(count)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        if publish.ratePerSecond == nil, context.channel.isWritable, publish.qos == .atMostOnce || inflight < publish.inflightLimit {
            schedulePump()
        }
    }

    // MARK: - Writing

    private func send(_ packet: MQTTPacket, flush: Bool) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 16)
        do {
            try encoder.encode(packet, into: &buffer)
        } catch {
            return
        }
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            needsFlush = true
        }
    }
}
