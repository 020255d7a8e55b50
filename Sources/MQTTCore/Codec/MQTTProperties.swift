import NIOCore

/// The property list of an MQTT 5.0 packet, in wire order. Empty for 3.1 and 3.1.1 packets.
///
/// An empty list costs no allocation, which keeps the common property-less PUBLISH cheap.
public struct MQTTProperties: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral {
    public var elements: [MQTTProperty]

    @inlinable
    public init() { self.elements = [] }

    @inlinable
    public init(_ elements: [MQTTProperty]) { self.elements = elements }

    @inlinable
    public init(arrayLiteral elements: MQTTProperty...) { self.elements = elements }

    @inlinable public var startIndex: Int { elements.startIndex }
    @inlinable public var endIndex: Int { elements.endIndex }
    @inlinable public subscript(position: Int) -> MQTTProperty { elements[position] }

    @inlinable
    public mutating func append(_ property: MQTTProperty) { elements.append(property) }

    // MARK: Typed accessors (the first occurrence wins; the decoder rejects repeats where the spec forbids them)

    public var payloadFormatIndicator: UInt8? { first { if case .payloadFormatIndicator(let v) = $0 { v } else { nil } } }
    public var messageExpiryInterval: UInt32? { first { if case .messageExpiryInterval(let v) = $0 { v } else { nil } } }
    public var contentType: String? { first { if case .contentType(let v) = $0 { v } else { nil } } }
    public var responseTopic: String? { first { if case .responseTopic(let v) = $0 { v } else { nil } } }
    public var correlationData: ByteBuffer? { first { if case .correlationData(let v) = $0 { v } else { nil } } }
    public var subscriptionIdentifiers: [UInt32] {
        elements.compactMap { if case .subscriptionIdentifier(let v) = $0 { v } else { nil } }
    }
    public var sessionExpiryInterval: UInt32? { first { if case .sessionExpiryInterval(let v) = $0 { v } else { nil } } }
    public var assignedClientIdentifier: String? { first { if case .assignedClientIdentifier(let v) = $0 { v } else { nil } } }
    public var serverKeepAlive: UInt16? { first { if case .serverKeepAlive(let v) = $0 { v } else { nil } } }
    public var authenticationMethod: String? { first { if case .authenticationMethod(let v) = $0 { v } else { nil } } }
    public var authenticationData: ByteBuffer? { first { if case .authenticationData(let v) = $0 { v } else { nil } } }
    public var requestProblemInformation: UInt8? { first { if case .requestProblemInformation(let v) = $0 { v } else { nil } } }
    public var willDelayInterval: UInt32? { first { if case .willDelayInterval(let v) = $0 { v } else { nil } } }
    public var requestResponseInformation: UInt8? { first { if case .requestResponseInformation(let v) = $0 { v } else { nil } } }
    public var responseInformation: String? { first { if case .responseInformation(let v) = $0 { v } else { nil } } }
    public var serverReference: String? { first { if case .serverReference(let v) = $0 { v } else { nil } } }
    public var reasonString: String? { first { if case .reasonString(let v) = $0 { v } else { nil } } }
    public var receiveMaximum: UInt16? { first { if case .receiveMaximum(let v) = $0 { v } else { nil } } }
    public var topicAliasMaximum: UInt16? { first { if case .topicAliasMaximum(let v) = $0 { v } else { nil } } }
    public var topicAlias: UInt16? { first { if case .topicAlias(let v) = $0 { v } else { nil } } }
    public var maximumQoS: UInt8? { first { if case .maximumQoS(let v) = $0 { v } else { nil } } }
    public var retainAvailable: UInt8? { first { if case .retainAvailable(let v) = $0 { v } else { nil } } }
    public var userProperties: [(String, String)] {
        elements.compactMap { if case .userProperty(let k, let v) = $0 { (k, v) } else { nil } }
    }
    public var maximumPacketSize: UInt32? { first { if case .maximumPacketSize(let v) = $0 { v } else { nil } } }
    public var wildcardSubscriptionAvailable: UInt8? { first { if case .wildcardSubscriptionAvailable(let v) = $0 { v } else { nil } } }
    public var subscriptionIdentifierAvailable: UInt8? { first { if case .subscriptionIdentifierAvailable(let v) = $0 { v } else { nil } } }
    public var sharedSubscriptionAvailable: UInt8? { first { if case .sharedSubscriptionAvailable(let v) = $0 { v } else { nil } } }

    @inlinable
    func first<T>(_ extract: (MQTTProperty) -> T?) -> T? {
        for property in elements {
            if let value = extract(property) { return value }
        }
        return nil
    }
}
