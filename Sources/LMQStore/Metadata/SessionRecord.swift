import MQTTCore

/// What the store keeps of a persistent session (MQTT 5.0 §4.1, 3.1.1 §4.1): everything a gateway needs to
/// resume it after a reconnect to any node. Messages themselves stay in the light message queues, and
/// delivery progress in the consume offsets of group `%LMQ%<clientIdentifier>`.
public struct SessionRecord: Sendable, Hashable {
    public var clientIdentifier: String
    /// The protocol version of the connection that last used the session.
    public var protocolVersion: MQTTProtocolVersion
    /// The session's subscriptions, at most one per topic filter. Read back sorted by topic filter
    /// (byte order).
    public var subscriptions: [StoredSubscription]
    /// The will message, if the connection has one.
    public var will: StoredWill?
    /// How long the session outlives its connection (§3.1.2.11.2); ``neverExpires`` keeps it forever, as a
    /// 3.1.1 session with CleanSession 0 is kept.
    public var sessionExpiryIntervalSeconds: UInt32
    /// Packet identifiers of inbound QoS 2 PUBLISHes that were received and answered with PUBREC but not yet
    /// released by PUBREL (§4.3.3). Read back in ascending order.
    public var pendingPubRelPacketIdentifiers: [UInt16]
    /// When the connection closed, in milliseconds since 1970; `nil` while a client is connected.
    public var disconnectedAtMillis: Int64?
    /// The gateway node holding the connection (or that held it last), e.g. `10.0.0.1:7001`.
    public var gatewayNode: String?

    /// The Session Expiry Interval meaning "never" (§3.1.2.11.2).
    public static let neverExpires: UInt32 = .max

    public init(
        clientIdentifier: String,
        protocolVersion: MQTTProtocolVersion,
        subscriptions: [StoredSubscription] = [],
        will: StoredWill? = nil,
        sessionExpiryIntervalSeconds: UInt32,
        pendingPubRelPacketIdentifiers: [UInt16] = [],
        disconnectedAtMillis: Int64? = nil,
        gatewayNode: String? = nil
    ) {
        self.clientIdentifier = clientIdentifier
        self.protocolVersion = protocolVersion
        self.subscriptions = subscriptions
        self.will = will
        self.sessionExpiryIntervalSeconds = sessionExpiryIntervalSeconds
        self.pendingPubRelPacketIdentifiers = pendingPubRelPacketIdentifiers
        self.disconnectedAtMillis = disconnectedAtMillis
        self.gatewayNode = gatewayNode
    }

    /// When the session expires, in milliseconds since 1970: `nil` while connected or when it never
    /// expires. Matches the `expires_at_millis` column the store queries.
    public var expiresAtMillis: Int64? {
        guard let disconnectedAtMillis, sessionExpiryIntervalSeconds != Self.neverExpires else { return nil }
        return disconnectedAtMillis + Int64(sessionExpiryIntervalSeconds) * 1_000
    }
}
