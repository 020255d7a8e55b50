import MQTTCore
import NIOCore

/// Everything one simulated client needs: who it is, where it connects from, and what it does once
/// connected.
struct ClientSpec: Sendable {
    var clientIdentifier: String
    /// The local address to bind before connecting (one of `--source-ips`); nil lets the kernel choose.
    var sourceAddress: SocketAddress?
    /// The broker port to connect to (`--pub-ports` / `--sub-ports`); nil: the run's `--port`.
    var port: Int? = nil
    var publish: PublishSpec?
    var subscribe: SubscribeSpec?
    /// Shared by the publishers and subscribers of a `pubsub --max-ahead` run.
    var deliveryGate: DeliveryGate? = nil
}

/// What a publishing client sends.
struct PublishSpec: Sendable {
    /// Written into every payload, so subscribers can follow each publisher's sequence.
    var publisherID: UInt32
    var topicName: String
    var qos: MQTTQoS
    var payloadSizeBytes: Int
    /// Messages per second for this client; nil means as fast as the connection takes them.
    var ratePerSecond: Double?
    /// Stop after this many messages; nil means until the run ends.
    var messageLimit: UInt64?
    /// Most QoS 1 / 2 messages sent and not yet acknowledged.
    var inflightLimit: Int
    var retain: Bool
}

/// What a subscribing client subscribes to.
struct SubscribeSpec: Sendable {
    var topicFilters: [String]
    var qos: MQTTQoS
}

/// The CONNECT settings every client of a run shares.
struct SessionSettings: Sendable {
    var protocolVersion: MQTTProtocolVersion
    var keepAliveSeconds: UInt16
    var cleanStart: Bool
    var username: String?
    var password: String?
    var connectTimeout: TimeAmount
}
