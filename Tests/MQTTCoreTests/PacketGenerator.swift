import MQTTCore
import NIOCore

/// Random, valid packets of a given protocol version: every packet type, every property allowed in it,
/// strings with multi-byte UTF-8, empty and large payloads. Used by the round-trip tests.
struct PacketGenerator {
    var rng: SeededGenerator
    let version: MQTTProtocolVersion

    private static let alphabet: [String] = ["a", "b", "Z", "0", "é", "中", "😀", "-", "_", " ", "$", "~"]

    mutating func int<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> T { T.random(in: range, using: &rng) }
    mutating func bool() -> Bool { Bool.random(using: &rng) }

    mutating func string(maxCharacters: Int = 12, allowEmpty: Bool = true) -> String {
        let count = int((allowEmpty ? 0 : 1)...maxCharacters)
        return (0..<count).map { _ in Self.alphabet.randomElement(using: &rng)! }.joined()
    }

    mutating func level() -> String {
        string(maxCharacters: 5).replacingOccurrences(of: "$", with: "d")
    }

    mutating func topicName() -> String {
        let levels = int(1...4)
        let name = (0..<levels).map { _ in level() }.joined(separator: "/")
        return name.isEmpty ? "t" : name
    }

    mutating func topicFilter() -> String {
        let levels = int(1...4)
        var parts: [String] = []
        for index in 0..<levels {
            switch int(0...5) {
            case 0: parts.append("+")
            case 1 where index == levels - 1: parts.append("#")
            default: parts.append(level())
            }
        }
        let filter = parts.joined(separator: "/")
        let plain = filter.isEmpty ? "f" : filter
        return int(0...5) == 0 ? "$share/group\(int(0...9))/\(plain)" : plain
    }

    mutating func bytes(maxCount: Int = 64) -> ByteBuffer {
        let count = int(0...maxCount)
        return ByteBuffer(bytes: (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    mutating func qos() -> MQTTQoS { MQTTQoS(rawValue: int(0...2))! }

    mutating func packetIdentifier() -> UInt16 { int(1...UInt16.max) }

    /// A random value for a property identifier, within the range the spec allows.
    mutating func property(_ identifier: MQTTProperty.Identifier) -> MQTTProperty {
        switch identifier {
        case .payloadFormatIndicator: return .payloadFormatIndicator(int(0...1))
        case .messageExpiryInterval: return .messageExpiryInterval(int(0...UInt32.max))
        case .contentType: return .contentType(string())
        case .responseTopic: return .responseTopic(topicName())
        case .correlationData: return .correlationData(bytes())
        case .subscriptionIdentifier: return .subscriptionIdentifier(int(1...268_435_455))
        case .sessionExpiryInterval: return .sessionExpiryInterval(int(0...UInt32.max))
        case .assignedClientIdentifier: return .assignedClientIdentifier(string())
        case .serverKeepAlive: return .serverKeepAlive(int(0...UInt16.max))
        case .authenticationMethod: return .authenticationMethod(string())
        case .authenticationData: return .authenticationData(bytes())
        case .requestProblemInformation: return .requestProblemInformation(int(0...1))
        case .willDelayInterval: return .willDelayInterval(int(0...UInt32.max))
        case .requestResponseInformation: return .requestResponseInformation(int(0...1))
        case .responseInformation: return .responseInformation(string())
        case .serverReference: return .serverReference(string())
        case .reasonString: return .reasonString(string())
        case .receiveMaximum: return .receiveMaximum(int(1...UInt16.max))
        case .topicAliasMaximum: return .topicAliasMaximum(int(0...UInt16.max))
        case .topicAlias: return .topicAlias(int(1...UInt16.max))
        case .maximumQoS: return .maximumQoS(int(0...1))
        case .retainAvailable: return .retainAvailable(int(0...1))
        case .userProperty: return .userProperty(string(), string())
        case .maximumPacketSize: return .maximumPacketSize(int(1...UInt32.max))
        case .wildcardSubscriptionAvailable: return .wildcardSubscriptionAvailable(int(0...1))
        case .subscriptionIdentifierAvailable: return .subscriptionIdentifierAvailable(int(0...1))
        case .sharedSubscriptionAvailable: return .sharedSubscriptionAvailable(int(0...1))
        }
    }

    /// A random property list valid in `context`: each allowed property at most once (user properties and,
    /// in PUBLISH, subscription identifiers possibly several times), in random order. Empty before 5.0.
    mutating func properties(_ context: MQTTPropertyContext) -> MQTTProperties {
        guard version == .v5, int(0...3) != 0 else { return [] }
        var list: [MQTTProperty] = []
        for identifier in MQTTProperty.Identifier.allCases where identifier.isAllowed(in: context) && bool() {
            let repeats = identifier.mayRepeat(in: context) ? int(1...3) : 1
            for _ in 0..<repeats { list.append(property(identifier)) }
        }
        list.shuffle(using: &rng)
        return MQTTProperties(list)
    }

    mutating func reasonCode(for type: MQTTPacketType) -> MQTTReasonCode {
        MQTTReasonCode.allCases.filter { $0.isValid(in: type) }.randomElement(using: &rng)!
    }

    mutating func packet(of type: MQTTPacketType) -> MQTTPacket {
        let v5 = version == .v5
        switch type {
        case .connect:
            var will: ConnectPacket.Will?
            if bool() {
                will = .init(topicName: topicName(), payload: bytes(), qos: qos(), retain: bool(), properties: properties(.will))
            }
            let username: String? = bool() ? string() : nil
            // 3.1.1 forbids a password without a user name ([MQTT-3.1.2-22]).
            let password: ByteBuffer? = (username != nil || v5) && bool() ? bytes() : nil
            return .connect(ConnectPacket(
                protocolVersion: version, clientIdentifier: string(maxCharacters: 23), cleanStart: bool(),
                keepAliveSeconds: int(0...UInt16.max), username: username, password: password, will: will,
                properties: properties(.connect)
            ))
        case .connAck:
            let code: MQTTReasonCode = v5
                ? reasonCode(for: .connAck)
                : MQTTReasonCode(connectReturnCodeV3: int(0...5))!
            return .connAck(ConnAckPacket(sessionPresent: code == .success && bool(), reasonCode: code, properties: properties(.connAck)))
        case .publish:
            let qos = qos()
            return .publish(PublishPacket(
                topicName: topicName(), payload: bytes(maxCount: 2048), qos: qos, retain: bool(),
                dup: qos != .atMostOnce && bool(), packetIdentifier: qos == .atMostOnce ? nil : packetIdentifier(),
                properties: properties(.publish)
            ))
        case .pubAck: return .pubAck(pubAck(.pubAck, .pubAck))
        case .pubRec: return .pubRec(pubAck(.pubRec, .pubRec))
        case .pubRel: return .pubRel(pubAck(.pubRel, .pubRel))
        case .pubComp: return .pubComp(pubAck(.pubComp, .pubComp))
        case .subscribe:
            let subscriptions = (0..<int(1...5)).map { _ -> Subscription in
                let filter = topicFilter()
                var subscription = Subscription(topicFilter: filter, maximumQoS: qos())
                if v5 {
                    subscription.noLocal = !filter.hasPrefix("$share/") && bool()
                    subscription.retainAsPublished = bool()
                    subscription.retainHandling = .init(rawValue: int(0...2))!
                }
                return subscription
            }
            var properties = properties(.subscribe)
            if v5 && bool() { properties.append(.subscriptionIdentifier(int(1...268_435_455))) }
            // At most one subscription identifier in SUBSCRIBE (§3.8.2.1.2).
            var seenIdentifier = false
            properties = MQTTProperties(properties.filter {
                guard case .subscriptionIdentifier = $0 else { return true }
                defer { seenIdentifier = true }
                return !seenIdentifier
            })
            return .subscribe(SubscribePacket(packetIdentifier: packetIdentifier(), subscriptions: subscriptions, properties: properties))
        case .subAck:
            let codes = (0..<int(1...5)).map { _ in
                v5 ? reasonCode(for: .subAck) : [MQTTReasonCode.success, .grantedQoS1, .grantedQoS2, .unspecifiedError].randomElement(using: &rng)!
            }
            return .subAck(SubAckPacket(packetIdentifier: packetIdentifier(), reasonCodes: codes, properties: properties(.subAck)))
        case .unsubscribe:
            return .unsubscribe(UnsubscribePacket(
                packetIdentifier: packetIdentifier(), topicFilters: (0..<int(1...5)).map { _ in topicFilter() },
                properties: properties(.unsubscribe)
            ))
        case .unsubAck:
            let codes = v5 ? (0..<int(1...5)).map { _ in reasonCode(for: .unsubAck) } : []
            return .unsubAck(UnsubAckPacket(packetIdentifier: packetIdentifier(), reasonCodes: codes, properties: properties(.unsubAck)))
        case .pingReq: return .pingReq
        case .pingResp: return .pingResp
        case .disconnect:
            return .disconnect(v5 ? DisconnectPacket(reasonCode: reasonCode(for: .disconnect), properties: properties(.disconnect)) : DisconnectPacket())
        case .auth:
            return .auth(AuthPacket(reasonCode: reasonCode(for: .auth), properties: properties(.auth)))
        }
    }

    private mutating func pubAck(_ type: MQTTPacketType, _ context: MQTTPropertyContext) -> PubAckPacket {
        guard version == .v5 else { return PubAckPacket(packetIdentifier: packetIdentifier()) }
        return PubAckPacket(packetIdentifier: packetIdentifier(), reasonCode: reasonCode(for: type), properties: properties(context))
    }

    /// Packet types that exist in this version.
    var packetTypes: [MQTTPacketType] {
        MQTTPacketType.allCases.filter { $0 != .auth || version == .v5 }
    }
}
