import MQTTCore

/// Watches every action list a `ServerConnectionStateMachine` returns and records each broken rule.
/// It mirrors the model of `ServerConnectionRandomizedTests`, loosened for a client that may do
/// anything: it checks what the machine must never do whatever it is fed.
///
/// - nothing happens after `close`, and `close` is the last action of its list;
/// - the encoder is configured before the first packet and never after CONNACK; every packet written
///   fits it, so never exceeds the client's Maximum Packet Size ([MQTT-3.1.2-24]);
/// - nothing but one CONNACK before CONNACK ([MQTT-3.2.0-1], [MQTT-3.2.0-2]); no PUBLISH is stored
///   before the connection is accepted ([MQTT-3.1.4-6]);
/// - outbound QoS 1/2 PUBLISHes carry non-zero packet identifiers that are unique in flight
///   ([MQTT-2.2.1-3], [MQTT-2.2.1-4]), never more in flight than the client's window ([MQTT-3.3.4-9]);
///   a DUP PUBLISH is only a resend of one in flight;
/// - every delivery offered is answered, and finished (acknowledged or dropped) at most once;
/// - inbound QoS 1/2 acknowledgements leave in arrival order (§4.6);
/// - `attachSession` at most once, `detachSession` at most once and only after it;
/// - the server never sends a client's packet, nor DISCONNECT to a 3.1/3.1.1 client.
public struct ServerConnectionInvariantChecker: Sendable {
    typealias Machine = ServerConnectionStateMachine

    /// The rules broken so far, each with the event that broke it.
    public private(set) var violations: [String] = []
    let configuration: ServerConnectionStateMachine.Configuration

    // What the machine did.
    private(set) var closed = false
    private(set) var connAckSent = false
    private(set) var accepted = false
    private var encoder: MQTTPacketEncoder?
    private(set) var protocolVersion: MQTTProtocolVersion?
    private var clientReceiveMaximum = Int(UInt16.max)
    private(set) var authenticationPending = false
    private(set) var attachPending = false
    private(set) var attachRequested = false
    private(set) var attachFailed = false
    private(set) var detachCount = 0

    // Outbound flows, by packet identifier.
    struct Outbound: Sendable {
        var tag: Machine.DeliveryTag
        var qos: MQTTQoS
        var released: Bool
        /// Written on this connection (a resumed delivery is not until its resend).
        var sentHere: Bool
    }
    private(set) var outbound: [UInt16: Outbound] = [:]
    private(set) var unfinishedTags: Set<Machine.DeliveryTag> = []
    private var offeredTag: Machine.DeliveryTag?
    private var offerAnswered = false

    // Inbound flows and requests to the gateway, awaiting the driver's answers.
    /// QoS 1/2 PUBLISHes handed to the store, in arrival order, until their acknowledgement is sent.
    private(set) var storeOrder: [(identifier: UInt16, qos: MQTTQoS)] = []
    /// Of those, the ones the store has not answered yet.
    private(set) var storeUnanswered: [UInt16] = []
    /// Inbound QoS 2 identifiers answered with a successful PUBREC: the client may release them.
    private(set) var awaitingPubRel: Set<UInt16> = []
    private(set) var pendingSubscribes: [UInt16: Int] = [:]
    private(set) var pendingUnsubscribes: [UInt16: Int] = [:]

    /// The client packet being handled, while the machine handles it.
    var packetBeingReceived: MQTTPacket?
    /// PUBRELs of this event for released deliveries not yet resent here: a resend (in flight again) or,
    /// in 3.1.1, the answer to a PUBREC the client sent early (not in flight). The two look alike; the
    /// machine's own count after the event says which.
    private var ambiguousPubRels: Set<UInt16> = []

    // Counts, to see which states the inputs reach.
    private(set) var deliveriesSent = 0
    private(set) var packetsSent = 0

    public init(configuration: ServerConnectionStateMachine.Configuration) {
        self.configuration = configuration
    }

    var window: Int { min(clientReceiveMaximum, configuration.maximumInflightDeliveries) }

    mutating func fail(_ message: String) {
        // The first few are enough to see what went wrong; a broken machine can break a rule per event.
        if violations.count < 20 { violations.append(message) }
    }

    // MARK: - Driver bookkeeping

    /// A delivery is about to be offered: its answer must come in the same action list.
    mutating func offering(_ tag: Machine.DeliveryTag) {
        unfinishedTags.insert(tag)
        offeredTag = tag
        offerAnswered = false
    }

    mutating func offerEnded(_ label: String, _ actions: [Machine.Action]) {
        if !offerAnswered { fail("\(label): delivery \(offeredTag.map { "\($0)" } ?? "?") got no answer: \(actions)") }
        offeredTag = nil
    }

    /// The machine took resumed deliveries: they are in flight with their identifiers.
    mutating func resumed(_ resumption: Machine.SessionResumption) {
        awaitingPubRel.formUnion(resumption.awaitingPubRelPacketIdentifiers)
        for delivery in resumption.inflightDeliveries {
            outbound[delivery.packetIdentifier] = Outbound(tag: delivery.tag, qos: delivery.publish.qos, released: delivery.released, sentHere: false)
            unfinishedTags.insert(delivery.tag)
        }
    }

    mutating func answeredAuthentication() { authenticationPending = false }
    mutating func answeredAttach(failed: Bool) {
        attachPending = false
        if failed { attachFailed = true }
    }
    mutating func answeredStore(_ identifier: UInt16) { storeUnanswered.removeAll { $0 == identifier } }
    mutating func answeredSubscribe(_ identifier: UInt16) { pendingSubscribes[identifier] = nil }
    mutating func answeredUnsubscribe(_ identifier: UInt16) { pendingUnsubscribes[identifier] = nil }

    /// The network is closed: from now on any action is one too many.
    mutating func networkClosedObserved() { closed = true }

    /// After the machine saw `connectionClosed`: the session was detached exactly when it was attached.
    mutating func finished(_ machine: ServerConnectionStateMachine) {
        if machine.state != .closed { fail("state \(machine.state) after connectionClosed") }
        let expected = attachRequested && !attachFailed ? 1 : 0
        if detachCount != expected { fail("\(detachCount) detachSession, expected \(expected)") }
    }

    // MARK: - Checking actions

    mutating func observe(_ actions: [Machine.Action], _ label: String, machine: ServerConnectionStateMachine) {
        let wasClosed = closed
        for (index, action) in actions.enumerated() {
            if wasClosed {
                fail("\(label): action after close: \(action)")
                return
            }
            if closed {
                fail("\(label): action after close in the same list: \(action)")
                return
            }
            switch action {
            case .configureEncoder(let version, let maximum):
                if connAckSent { fail("\(label): encoder configured after CONNACK") }
                encoder = MQTTPacketEncoder(protocolVersion: version, maxPacketSizeBytes: maximum)
                protocolVersion = version
            case .send(let packet):
                observeSent(packet, label)
            case .close:
                closed = true
                if index != actions.count - 1 { fail("\(label): close is not the last action of \(actions)") }
            case .scheduleTimer:
                break
            case .authenticate(let connect):
                if authenticationPending || attachRequested { fail("\(label): authenticate twice") }
                authenticationPending = true
                if connect.protocolVersion == .v5, let maximum = connect.properties.receiveMaximum {
                    clientReceiveMaximum = Int(maximum)
                }
            case .attachSession:
                if attachRequested { fail("\(label): attachSession twice") }
                attachRequested = true
                attachPending = true
            case .detachSession:
                if !attachRequested { fail("\(label): detachSession without attachSession") }
                detachCount += 1
                if detachCount > 1 { fail("\(label): detachSession twice") }
            case .storePublish(let publish):
                if !accepted { fail("\(label): PUBLISH stored before CONNACK [MQTT-3.1.4-6]") }
                if publish.topicName.isEmpty || publish.properties.topicAlias != nil {
                    fail("\(label): stored PUBLISH with an unresolved topic: \(publish)")
                }
                if let identifier = publish.packetIdentifier, publish.qos != .atMostOnce {
                    if storeOrder.contains(where: { $0.identifier == identifier }) {
                        fail("\(label): inbound identifier \(identifier) stored while its flow is open")
                    }
                    storeOrder.append((identifier, publish.qos))
                    storeUnanswered.append(identifier)
                }
            case .releaseInboundPacketIdentifier(let identifier):
                if awaitingPubRel.remove(identifier) == nil { fail("\(label): released \(identifier), which awaits no PUBREL") }
            case .subscribe(let subscribe):
                if pendingSubscribes[subscribe.packetIdentifier] != nil { fail("\(label): SUBSCRIBE \(subscribe.packetIdentifier) handed over twice") }
                pendingSubscribes[subscribe.packetIdentifier] = subscribe.subscriptions.count
            case .unsubscribe(let unsubscribe):
                if pendingUnsubscribes[unsubscribe.packetIdentifier] != nil { fail("\(label): UNSUBSCRIBE \(unsubscribe.packetIdentifier) handed over twice") }
                pendingUnsubscribes[unsubscribe.packetIdentifier] = unsubscribe.topicFilters.count
            case .acknowledgeDelivery(let tag), .dropDelivery(let tag, _):
                if unfinishedTags.remove(tag) == nil { fail("\(label): delivery \(tag) finished twice or never offered") }
                if tag == offeredTag { offerAnswered = true }
                for (identifier, flow) in outbound where flow.tag == tag {
                    outbound[identifier] = nil
                }
            case .retryDeliveryLater(let tag):
                if tag != offeredTag { fail("\(label): retry for \(tag), which was not offered now") }
                unfinishedTags.remove(tag)
                offerAnswered = true
            case .recordDeliverySent(let tag, let identifier):
                let next = index + 1 < actions.count ? actions[index + 1] : nil
                guard case .send(.publish(let publish))? = next, publish.packetIdentifier == identifier, publish.qos == .exactlyOnce else {
                    fail("\(label): delivery \(tag) recorded as sent under \(identifier), but the next action is \(String(describing: next))")
                    break
                }
            case .recordDeliveryReleased(let tag, let identifier):
                if outbound[identifier]?.tag != tag || outbound[identifier]?.qos != .exactlyOnce {
                    fail("\(label): released \(tag) under \(identifier), which is not its QoS 2 delivery")
                }
            }
        }
        // A delivery finished later in the same event (an early PUBCOMP) is out of the question.
        ambiguousPubRels = ambiguousPubRels.filter { outbound[$0] != nil }
        if !ambiguousPubRels.isEmpty {
            let sentHere = outbound.values.filter(\.sentHere).count
            if machine.state == .connected && machine.inflightDeliveryCount == sentHere + ambiguousPubRels.count {
                for identifier in ambiguousPubRels { outbound[identifier]?.sentHere = true }
                if sentHere + ambiguousPubRels.count > window {
                    fail("\(label): \(sentHere + ambiguousPubRels.count) deliveries in flight, window \(window) [MQTT-3.3.4-9]")
                }
            }
            ambiguousPubRels = []
        }
        if accepted && !closed && machine.state == .connected {
            let sentHere = outbound.values.filter(\.sentHere).count
            if machine.inflightDeliveryCount != sentHere {
                fail("\(label): the machine has \(machine.inflightDeliveryCount) deliveries in flight, the client \(sentHere)")
            }
        }
    }

    private mutating func observeSent(_ packet: MQTTPacket, _ label: String) {
        packetsSent += 1
        guard let encoder else {
            fail("\(label): \(packet.type) written before the encoder was configured")
            return
        }
        // [MQTT-3.1.2-24]: never larger than the client's Maximum Packet Size.
        do {
            _ = try encoder.encodedSize(of: packet)
        } catch {
            fail("\(label): \(packet.type) cannot be written: \(error)")
        }
        if !connAckSent {
            guard case .connAck(let connAck) = packet else {
                fail("\(label): \(packet.type) before CONNACK [MQTT-3.2.0-1]")
                return
            }
            connAckSent = true
            accepted = connAck.reasonCode == .success
            return
        }
        switch packet {
        case .connAck:
            fail("\(label): a second CONNACK [MQTT-3.2.0-2]")
        case .publish(let publish):
            if !accepted { fail("\(label): PUBLISH after a refusing CONNACK") }
            guard publish.qos != .atMostOnce else {
                deliveriesSent += 1
                return
            }
            guard let identifier = publish.packetIdentifier, identifier != 0 else {
                fail("\(label): QoS \(publish.qos.rawValue) PUBLISH without a packet identifier [MQTT-2.2.1-3]")
                return
            }
            if publish.dup {
                guard var flow = outbound[identifier], !flow.released else {
                    fail("\(label): DUP PUBLISH \(identifier) that is no resend of a delivery in flight [MQTT-4.4.0-1]")
                    return
                }
                flow.sentHere = true
                outbound[identifier] = flow
            } else {
                guard outbound[identifier] == nil else {
                    fail("\(label): packet identifier \(identifier) used while in flight [MQTT-2.2.1-4]")
                    return
                }
                guard let tag = offeredTag else {
                    fail("\(label): new PUBLISH \(identifier) outside a delivery offer")
                    return
                }
                outbound[identifier] = Outbound(tag: tag, qos: publish.qos, released: false, sentHere: true)
                offerAnswered = true
            }
            deliveriesSent += 1
            let inFlight = outbound.values.filter(\.sentHere).count
            if inFlight > window { fail("\(label): \(inFlight) deliveries in flight, window \(window) [MQTT-3.3.4-9]") }
        case .pubRel(let pubRel):
            let identifier = pubRel.packetIdentifier
            if case .pubRec(let ack)? = packetBeingReceived, ack.packetIdentifier == identifier, outbound[identifier]?.sentHere != true {
                // The answer to a PUBREC for a delivery not (re)sent on this connection: nothing goes in flight
                // (v5 says 0x92 Packet Identifier not found).
                if protocolVersion == .v5 && pubRel.reasonCode != .packetIdentifierNotFound {
                    fail("\(label): PUBREL Success for \(identifier), which is not in flight on this connection")
                }
            } else if var flow = outbound[identifier], flow.qos == .exactlyOnce {
                if flow.sentHere {
                    // After the client's PUBREC (or a repeated one).
                    flow.released = true
                    outbound[identifier] = flow
                } else if flow.released && pubRel.reasonCode == .success {
                    ambiguousPubRels.insert(identifier)
                }
                // Not released and not resent here: the answer to a stray PUBREC, nothing in flight.
            } else if protocolVersion == .v5 && pubRel.reasonCode != .packetIdentifierNotFound {
                fail("\(label): PUBREL for \(identifier), which is not in flight")
            }
        case .pubAck(let ack), .pubRec(let ack):
            let identifier = ack.packetIdentifier
            let isPubRec: Bool
            if case .pubRec = packet { isPubRec = true } else { isPubRec = false }
            if let first = storeOrder.first, first.identifier == identifier {
                storeOrder.removeFirst()
                if (first.qos == .exactlyOnce) != isPubRec { fail("\(label): wrong acknowledgement kind for \(identifier)") }
                if isPubRec && !ack.reasonCode.isFailure { awaitingPubRel.insert(identifier) }
            } else if isPubRec && awaitingPubRel.contains(identifier) {
                // A repeated PUBREC for a resend ([MQTT-4.3.3-10]).
            } else if storeOrder.contains(where: { $0.identifier == identifier }) {
                fail("\(label): \(packet.type) \(identifier) out of arrival order (next: \(storeOrder[0].identifier)) (§4.6)")
            } else if !ack.reasonCode.isFailure {
                fail("\(label): \(packet.type) Success for \(identifier), which the store never had")
            }
        case .pubComp(let ack):
            if awaitingPubRel.contains(ack.packetIdentifier) {
                fail("\(label): PUBCOMP \(ack.packetIdentifier) before its identifier was released")
            }
        case .subAck(let subAck):
            if pendingSubscribes[subAck.packetIdentifier] != nil { fail("\(label): SUBACK \(subAck.packetIdentifier) before the store answered") }
        case .unsubAck(let unsubAck):
            if pendingUnsubscribes[unsubAck.packetIdentifier] != nil { fail("\(label): UNSUBACK \(unsubAck.packetIdentifier) before the store answered") }
        case .pingResp:
            break
        case .disconnect:
            if protocolVersion != .v5 { fail("\(label): DISCONNECT to a \(protocolVersion.map { "\($0)" } ?? "?") client") }
        case .connect, .subscribe, .unsubscribe, .pingReq, .auth:
            fail("\(label): the server sent \(packet.type)")
        }
    }
}
