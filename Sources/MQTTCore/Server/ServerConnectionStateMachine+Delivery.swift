import NIOCore

extension ServerConnectionStateMachine {
    /// Names one delivery for the gateway (which queue and offset it came from); opaque to the machine.
    public struct DeliveryTag: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
        public var rawValue: UInt64

        public init(_ rawValue: UInt64) { self.rawValue = rawValue }
        public init(integerLiteral value: UInt64) { self.rawValue = value }

        public var description: String { "#\(rawValue)" }
    }

    /// An application message for this client.
    public struct Delivery: Sendable, Hashable {
        public var tag: DeliveryTag
        /// The message as this client is to get it: QoS already min(published, granted) ([MQTT-3.8.4-8]),
        /// RETAIN per Retain As Published ([MQTT-3.3.1-12]), Subscription Identifiers of the matching
        /// subscriptions, Message Expiry Interval reduced by the time waited ([MQTT-3.3.2-6]). The machine
        /// sets the packet identifier and DUP, and applies topic aliases; any the packet carries are ignored.
        public var publish: PublishPacket

        public init(tag: DeliveryTag, publish: PublishPacket) {
            self.tag = tag
            self.publish = publish
        }
    }

    /// An outbound QoS 1/2 delivery of a resumed session that was sent and not finished.
    public struct InflightDelivery: Sendable, Hashable {
        public var tag: DeliveryTag
        /// The identifier it was sent with; it is resent with the same one ([MQTT-4.4.0-1]).
        public var packetIdentifier: UInt16
        public var publish: PublishPacket
        /// PUBREC arrived (`recordDeliveryReleased`): resend PUBREL, not the PUBLISH ([MQTT-4.3.3-6]).
        public var released: Bool

        public init(tag: DeliveryTag, packetIdentifier: UInt16, publish: PublishPacket, released: Bool = false) {
            self.tag = tag
            self.packetIdentifier = packetIdentifier
            self.publish = publish
            self.released = released
        }
    }

    /// Why a delivery was dropped without being sent.
    public enum DeliveryDropReason: Sendable, Hashable, CustomStringConvertible {
        /// The PUBLISH would exceed the client's Maximum Packet Size ([MQTT-3.1.2-24], [MQTT-3.1.2-25]).
        case packetTooLarge(sizeBytes: Int, limitBytes: Int)

        public var description: String {
            switch self {
            case .packetTooLarge(let size, let limit):
                return "PUBLISH of \(size) bytes exceeds the client's Maximum Packet Size of \(limit) bytes [MQTT-3.1.2-25]"
            }
        }
    }

    struct InflightEntry: Sendable {
        var tag: DeliveryTag
        /// As first sent: packet identifier set, DUP clear, no topic alias.
        var publish: PublishPacket
        var released: Bool
        /// A resumed delivery not resent on this connection yet.
        var awaitingResend: Bool
        /// Increases with every delivery taken into the window: orders `SessionDetachment.unfinishedDeliveries`.
        var sequence: UInt64
    }

    /// Payloads above this are checked against the protocol's packet size ceiling even without a client limit.
    static let largePayloadBytes = 128 * 1024 * 1024

    // MARK: - Delivering

    /// Offers a message to the client. QoS 0 is written and acknowledged at once; QoS 1/2 gets a packet
    /// identifier and is written when the client's receive window has room ([MQTT-3.3.4-9]), else the
    /// answer is `retryDeliveryLater`. A PUBLISH too large for the client is dropped ([MQTT-3.1.2-25]).
    public mutating func deliveryRequested(_ delivery: Delivery) -> [Action] {
        guard case .connected(var connected) = phase else { return [.retryDeliveryLater(delivery.tag)] }
        var publish = Self.normalizedDelivery(delivery.publish, connected.parameters.protocolVersion)
        var actions: [Action] = []
        switch publish.qos {
        case .atMostOnce:
            phase = .modifying
            if sendPublish(publish, tag: delivery.tag, &connected, &actions) {
                actions.append(.acknowledgeDelivery(delivery.tag))
            }
        case .atLeastOnce, .exactlyOnce:
            // Resumed deliveries go first (§4.6); then the send quota ([MQTT-4.9.0-2]).
            guard connected.pendingResends.isEmpty, connected.sentInflightCount < connected.deliveryWindow else {
                return [.retryDeliveryLater(delivery.tag)]
            }
            phase = .modifying
            let nextIdentifier = connected.nextPacketIdentifier
            let identifier = connected.allocatePacketIdentifier()
            publish.packetIdentifier = identifier
            let record = Action.recordDeliverySent(delivery.tag, packetIdentifier: identifier)
            if publish.qos == .exactlyOnce { actions.append(record) }
            if sendPublish(publish, tag: delivery.tag, &connected, &actions) {
                connected.inflight[identifier] = InflightEntry(
                    tag: delivery.tag, publish: publish, released: false, awaitingResend: false, sequence: connected.takeInflightSequence()
                )
            } else {
                // Never on the wire: the identifier is not used up, and nothing needs recording.
                connected.nextPacketIdentifier = nextIdentifier
                if publish.qos == .exactlyOnce, let index = actions.firstIndex(of: record) { actions.remove(at: index) }
            }
        }
        phase = .connected(connected)
        return actions
    }

    /// The packet a delivery starts from: no packet identifier, DUP clear ([MQTT-4.3.1-1], [MQTT-4.3.2-2],
    /// [MQTT-4.3.3-2]), no topic alias, and no properties before 5.0.
    static func normalizedDelivery(_ publish: PublishPacket, _ version: MQTTProtocolVersion) -> PublishPacket {
        var normalized = publish
        normalized.packetIdentifier = nil
        normalized.dup = false
        if !version.hasProperties {
            normalized.properties = []
        } else if normalized.properties.topicAlias != nil {
            normalized.properties = MQTTProperties(normalized.properties.filter { $0.identifier != .topicAlias })
        }
        return normalized
    }

    /// Writes a PUBLISH, with a topic alias where the client takes them, unless it is too large for the
    /// client; then it is dropped. Returns whether it was written.
    private func sendPublish(_ publish: PublishPacket, tag: DeliveryTag, _ connected: inout Connected, _ actions: inout [Action]) -> Bool {
        let parameters = connected.parameters
        var packet = publish
        var newAlias: UInt16?
        if configuration.outboundTopicAliasesEnabled && parameters.protocolVersion.hasProperties && parameters.clientTopicAliasMaximum > 0 {
            if let alias = connected.outboundTopicAliases[publish.topicName] {
                packet.topicName = ""
                packet.properties.append(.topicAlias(alias))
            } else if connected.outboundTopicAliases.count < Int(parameters.clientTopicAliasMaximum) {
                // [MQTT-3.1.2-26], [MQTT-3.3.2-11]: never above the client's Topic Alias Maximum.
                let alias = UInt16(connected.outboundTopicAliases.count + 1)
                packet.properties.append(.topicAlias(alias))
                newAlias = alias
            }
        }
        if parameters.clientMaximumPacketSizeBytes != nil || packet.payload.readableBytes > Self.largePayloadBytes,
            let tooLarge = encodedSizeIfTooLarge(.publish(packet), parameters)
        {
            actions.append(.dropDelivery(tag, .packetTooLarge(sizeBytes: tooLarge.sizeBytes, limitBytes: tooLarge.limitBytes)))
            return false
        }
        // The mapping exists only once the client has seen the topic with it.
        if let newAlias { connected.outboundTopicAliases[publish.topicName] = newAlias }
        actions.append(.send(.publish(packet)))
        return true
    }

    /// Resends resumed deliveries while the window has room: PUBLISH with DUP ([MQTT-3.3.1-1]) or PUBREL,
    /// with the original packet identifiers, in the original order ([MQTT-4.4.0-1]).
    func fillDeliveryWindow(_ connected: inout Connected, _ actions: inout [Action]) {
        while let identifier = connected.pendingResends.first, connected.sentInflightCount < connected.deliveryWindow {
            connected.pendingResends.removeFirst()
            guard var entry = connected.inflight[identifier] else { continue }
            entry.awaitingResend = false
            if entry.released {
                connected.inflight[identifier] = entry
                actions.append(.send(.pubRel(PubAckPacket(packetIdentifier: identifier))))
                continue
            }
            var resend = entry.publish
            resend.dup = true
            if sendPublish(resend, tag: entry.tag, &connected, &actions) {
                connected.inflight[identifier] = entry
            } else {
                connected.inflight[identifier] = nil
            }
        }
    }

    // MARK: - Acknowledgements of deliveries

    /// PUBACK ends a QoS 1 delivery; a refusing one too ([MQTT-4.4.0-2], [MQTT-4.8.2-6]).
    func pubAckReceived(_ ack: PubAckPacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let identifier = ack.packetIdentifier
        // Unknown: a late duplicate; nothing is in flight under it, so there is nothing to do.
        guard let entry = connected.inflight[identifier], !entry.awaitingResend else { return nil }
        guard entry.publish.qos == .atLeastOnce else {
            return .violation(.protocolError, "PUBACK for QoS 2 delivery \(identifier)", specRule: nil)
        }
        connected.inflight[identifier] = nil
        actions.append(.acknowledgeDelivery(entry.tag))
        fillDeliveryWindow(&connected, &actions)
        return nil
    }

    /// PUBREC: PUBREL follows ([MQTT-4.3.3-4]), or with a failure code the delivery ends ([MQTT-4.4.0-2]).
    func pubRecReceived(_ ack: PubAckPacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let identifier = ack.packetIdentifier
        let hasReasonCodes = connected.parameters.protocolVersion.hasProperties
        guard var entry = connected.inflight[identifier], !entry.awaitingResend else {
            // §3.6.2.1: PUBREL 0x92 (v5) tells the client nothing awaits it under this identifier.
            let code: MQTTReasonCode = hasReasonCodes ? .packetIdentifierNotFound : .success
            actions.append(.send(.pubRel(PubAckPacket(packetIdentifier: identifier, reasonCode: code))))
            return nil
        }
        guard entry.publish.qos == .exactlyOnce else {
            return .violation(.protocolError, "PUBREC for QoS 1 delivery \(identifier)", specRule: nil)
        }
        if entry.released {
            // A repeated PUBREC: PUBREL again.
            actions.append(.send(.pubRel(PubAckPacket(packetIdentifier: identifier))))
            return nil
        }
        if hasReasonCodes && ack.reasonCode.isFailure {
            connected.inflight[identifier] = nil
            actions.append(.acknowledgeDelivery(entry.tag))
            fillDeliveryWindow(&connected, &actions)
            return nil
        }
        entry.released = true
        connected.inflight[identifier] = entry
        actions.append(.recordDeliveryReleased(entry.tag, packetIdentifier: identifier))
        actions.append(.send(.pubRel(PubAckPacket(packetIdentifier: identifier))))
        return nil
    }

    /// PUBCOMP ends a QoS 2 delivery ([MQTT-4.3.3-5]).
    func pubCompReceived(_ ack: PubAckPacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let identifier = ack.packetIdentifier
        guard let entry = connected.inflight[identifier], !entry.awaitingResend else { return nil }
        guard entry.released else {
            return .violation(.protocolError, "PUBCOMP for delivery \(identifier) before PUBREL", specRule: nil)
        }
        connected.inflight[identifier] = nil
        actions.append(.acknowledgeDelivery(entry.tag))
        fillDeliveryWindow(&connected, &actions)
        return nil
    }
}

extension ServerConnectionStateMachine.Connected {
    /// The next value of `InflightEntry.sequence`.
    mutating func takeInflightSequence() -> UInt64 {
        defer { nextInflightSequence += 1 }
        return nextInflightSequence
    }

    /// Deliveries in flight, in the order they were first sent: what a resumed session resends
    /// ([MQTT-4.4.0-1]).
    var unfinishedDeliveries: [ServerConnectionStateMachine.InflightDelivery] {
        inflight.sorted { $0.value.sequence < $1.value.sequence }.map { identifier, entry in
            ServerConnectionStateMachine.InflightDelivery(
                tag: entry.tag, packetIdentifier: identifier, publish: entry.publish, released: entry.released
            )
        }
    }

    /// A non-zero packet identifier no unfinished delivery uses ([MQTT-2.2.1-4]).
    mutating func allocatePacketIdentifier() -> UInt16 {
        precondition(inflight.count < Int(UInt16.max), "every packet identifier is in flight")
        while true {
            let identifier = nextPacketIdentifier
            nextPacketIdentifier = identifier == .max ? 1 : identifier + 1
            if inflight[identifier] == nil { return identifier }
        }
    }

    /// Takes over the unfinished deliveries of a resumed session; `fillDeliveryWindow` resends them.
    mutating func resume(_ deliveries: [ServerConnectionStateMachine.InflightDelivery]) {
        for delivery in deliveries {
            let identifier = delivery.packetIdentifier
            precondition(identifier != 0 && inflight[identifier] == nil, "resumed deliveries need distinct non-zero packet identifiers")
            precondition(delivery.publish.qos != .atMostOnce, "QoS 0 deliveries are never in flight")
            precondition(!delivery.released || delivery.publish.qos == .exactlyOnce, "only QoS 2 deliveries are released")
            var publish = ServerConnectionStateMachine.normalizedDelivery(delivery.publish, parameters.protocolVersion)
            publish.packetIdentifier = identifier
            inflight[identifier] = ServerConnectionStateMachine.InflightEntry(
                tag: delivery.tag, publish: publish, released: delivery.released, awaitingResend: true, sequence: takeInflightSequence()
            )
            pendingResends.append(identifier)
        }
    }
}
