import MQTTCore
import NIOCore

/// The client's side of the MQTT session state (§4.1): what must survive a dropped connection so a
/// resumed session can finish every QoS 1 and 2 flow.
///
/// - Outbound: QoS 1 and 2 messages sent and not completely acknowledged (`inflight`), in the order they
///   were first sent, and those waiting for an inflight slot (`queued`).
/// - Inbound: identifiers of QoS 2 messages received and delivered but not yet released by PUBREL
///   (method B of §4.3.3: deliver on PUBLISH, remember the identifier until PUBREL).
///
/// A value type without I/O; `ClientStateMachine` drives it.
struct ClientSession {
    typealias RequestID = UInt64

    /// Where an outbound QoS 1 or 2 flow stands (§4.3.2, §4.3.3).
    enum Stage: Hashable {
        /// QoS 1 PUBLISH sent.
        case awaitingPubAck
        /// QoS 2 PUBLISH sent.
        case awaitingPubRec
        /// QoS 2 PUBREC received, PUBREL sent.
        case awaitingPubComp
    }

    struct InflightPublish {
        var requestID: RequestID
        /// As first sent (DUP clear); the payload is dropped once PUBREC arrives.
        var publish: PublishPacket
        var stage: Stage
        /// Order of first sending, for resending in the original order ([MQTT-4.6.0-1]).
        var sequenceNumber: UInt64
        /// Whether it was (re)sent on the current connection: only those count against the window.
        var isSentOnThisConnection: Bool
    }

    struct QueuedPublish {
        var requestID: RequestID
        var publish: PublishPacket
    }

    var packetIdentifiers = PacketIdentifierAllocator()
    private(set) var inflight: [UInt16: InflightPublish] = [:]
    private(set) var queued = CircularBuffer<QueuedPublish>()
    /// Inflight messages still to be resent on this connection, in their original order.
    private var resendOrder = CircularBuffer<UInt16>()
    /// Inflight messages sent on this connection: what counts against Receive Maximum ([MQTT-3.3.4-7]).
    private(set) var sentCount = 0
    private var nextSequenceNumber: UInt64 = 0
    /// Inbound QoS 2 messages delivered and awaiting PUBREL ([MQTT-4.3.3-9]).
    private(set) var inboundQoS2Identifiers: Set<UInt16> = []

    // MARK: Outbound

    /// Appends a QoS 1 or 2 publish to the queue; `nextPacket(window:)` sends it when a slot is free.
    mutating func enqueue(_ publish: PublishPacket, requestID: RequestID) {
        precondition(publish.qos != .atMostOnce, "QoS 0 messages are not part of the session")
        queued.append(QueuedPublish(requestID: requestID, publish: publish))
    }

    /// The next PUBLISH or PUBREL to send if fewer than `window` messages are in flight on this
    /// connection: first resends, in original order, then queued messages, which get a packet identifier now.
    mutating func nextPacket(window: Int) -> MQTTPacket? {
        guard sentCount < window else { return nil }
        while let identifier = resendOrder.popFirst() {
            guard var message = inflight[identifier], !message.isSentOnThisConnection else { continue }
            message.isSentOnThisConnection = true
            inflight[identifier] = message
            sentCount += 1
            switch message.stage {
            case .awaitingPubAck, .awaitingPubRec:
                var publish = message.publish
                publish.dup = true  // [MQTT-3.3.1-1]
                return .publish(publish)
            case .awaitingPubComp:
                return .pubRel(PubAckPacket(packetIdentifier: identifier))
            }
        }
        guard let next = queued.first, let identifier = packetIdentifiers.allocate() else { return nil }
        queued.removeFirst()
        var publish = next.publish
        publish.packetIdentifier = identifier
        publish.dup = false
        let stage: Stage = publish.qos == .atLeastOnce ? .awaitingPubAck : .awaitingPubRec
        inflight[identifier] = InflightPublish(
            requestID: next.requestID, publish: publish, stage: stage,
            sequenceNumber: nextSequenceNumber, isSentOnThisConnection: true
        )
        nextSequenceNumber += 1
        sentCount += 1
        return .publish(publish)
    }

    /// The stage of the inflight message with `identifier`, if there is one.
    func stage(of identifier: UInt16) -> Stage? {
        inflight[identifier]?.stage
    }

    /// Ends the flow of the inflight message with `identifier` (PUBACK, PUBCOMP, or a refusing PUBREC)
    /// and frees its identifier. Returns the request it completes.
    mutating func complete(_ identifier: UInt16) -> RequestID? {
        guard let message = inflight.removeValue(forKey: identifier) else { return nil }
        if message.isSentOnThisConnection { sentCount -= 1 }
        packetIdentifiers.release(identifier)
        return message.requestID
    }

    /// PUBREC with success: the message now awaits PUBCOMP, and only its identifier is still needed.
    mutating func released(_ identifier: UInt16) {
        guard var message = inflight[identifier] else { return }
        message.stage = .awaitingPubComp
        message.publish.payload = ByteBuffer()
        inflight[identifier] = message
    }

    // MARK: Inbound QoS 2

    /// Records an inbound QoS 2 PUBLISH. Returns false if its identifier is already awaiting PUBREL,
    /// i.e. the message is a duplicate and must not be delivered again ([MQTT-4.3.3-9]).
    mutating func inboundQoS2Received(_ identifier: UInt16) -> Bool {
        inboundQoS2Identifiers.insert(identifier).inserted
    }

    /// Forgets an inbound QoS 2 identifier: on PUBREL, or when the message could not be delivered.
    /// Returns whether it was known.
    @discardableResult
    mutating func inboundQoS2Released(_ identifier: UInt16) -> Bool {
        inboundQoS2Identifiers.remove(identifier) != nil
    }

    // MARK: Connections

    /// The connection closed. If the session continues on the server, every flow is kept for resending;
    /// otherwise the session is over and every outbound request is returned to be failed.
    mutating func connectionClosed(sessionContinues: Bool) -> [RequestID] {
        guard sessionContinues else { return end() }
        for identifier in inflight.keys {
            inflight[identifier]!.isSentOnThisConnection = false
        }
        resendOrder.removeAll()
        sentCount = 0
        return []
    }

    /// A new connection was accepted. With the session present every inflight message is resent, in
    /// order ([MQTT-4.4.0-1]); without it the server knows none of them: they are returned to be failed,
    /// while queued (never sent) messages stay queued.
    mutating func connectionAccepted(sessionPresent: Bool) -> [RequestID] {
        resendOrder.removeAll()
        sentCount = 0
        guard sessionPresent else {
            let messages = inflight.values.sorted { $0.sequenceNumber < $1.sequenceNumber }
            for identifier in inflight.keys { packetIdentifiers.release(identifier) }
            inflight.removeAll()
            inboundQoS2Identifiers.removeAll()
            return messages.map(\.requestID)
        }
        for message in inflight.values.sorted(by: { $0.sequenceNumber < $1.sequenceNumber }) {
            inflight[message.publish.packetIdentifier!]!.isSentOnThisConnection = false
            resendOrder.append(message.publish.packetIdentifier!)
        }
        return []
    }

    /// Ends the session: forgets everything and returns every outbound request (inflight first, in
    /// order, then queued) to be failed.
    mutating func end() -> [RequestID] {
        let requests = inflight.values.sorted { $0.sequenceNumber < $1.sequenceNumber }.map(\.requestID)
            + queued.map(\.requestID)
        for identifier in inflight.keys { packetIdentifiers.release(identifier) }
        inflight.removeAll()
        queued.removeAll()
        resendOrder.removeAll()
        sentCount = 0
        inboundQoS2Identifiers.removeAll()
        return requests
    }
}
