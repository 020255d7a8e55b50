import MQTTCore
import NIOCore

extension MQTTClient {
    /// Everything an `MQTTClient` needs to connect, with documented defaults. The client uses the same
    /// configuration for every `connect()`.
    public struct Configuration: Sendable {
        /// Host name or IP address of the server. Default `"127.0.0.1"`.
        public var host: String
        /// TCP port of the server. Default 1883.
        public var port: Int
        /// The Client Identifier (§3.1.3.1). Default: `"swift-"` and 16 random hex digits, 22 characters,
        /// which every server must accept ([MQTT-3.1.3-5]). An empty identifier asks a 5.0 server to
        /// assign one; the assigned identifier is then used for later connects of the same client.
        public var clientIdentifier: String
        /// Default `.v3_1_1`.
        public var protocolVersion: MQTTProtocolVersion
        /// Clean Start (5.0) / Clean Session (3.1.1): start a new session, discarding any old one. Default true.
        /// `connect(cleanStart:)` can override it for one connection.
        public var cleanStart: Bool
        /// Keep Alive in seconds (§3.1.2.10); 0 turns keep-alive off. Default 60. A 5.0 server's Server
        /// Keep Alive replaces it ([MQTT-3.2.2-21]).
        public var keepAliveSeconds: UInt16
        /// How long to wait for PINGRESP after a PINGREQ before closing the connection.
        /// Default nil: the keep-alive interval.
        public var pingResponseTimeout: TimeAmount?
        /// Default nil.
        public var username: String?
        /// Default nil. MQTT passwords are binary data; use `ByteBuffer(string:)` for text.
        public var password: ByteBuffer?
        /// The will message the server publishes if the connection ends without DISCONNECT (§3.1.2.5).
        /// Default nil. Its properties are sent in 5.0 only.
        public var will: ConnectPacket.Will?

        /// 5.0 Session Expiry Interval in seconds: how long the server keeps the session after the
        /// connection closes. Default 0, the session ends with the connection (§3.1.2.11.2).
        public var sessionExpiryIntervalSeconds: UInt32
        /// 5.0 Receive Maximum: how many QoS 1 and 2 messages the server may have in flight to this client.
        /// Default 65,535, the protocol's maximum (sent only when lower).
        public var receiveMaximum: UInt16
        /// 5.0 Topic Alias Maximum: how many topic aliases the server may use towards this client. Default 16.
        public var topicAliasMaximum: UInt16
        /// 5.0 User Properties sent in CONNECT. Default none.
        public var userProperties: [(name: String, value: String)]

        /// The largest packet the client accepts, fixed header included; larger ones close the connection.
        /// Sent to a 5.0 server as Maximum Packet Size so it does not send larger ones. Default 16 MiB.
        public var maxPacketSizeBytes: Int
        /// Time allowed for the TCP connection, and then again for the CONNACK. Default 10 seconds.
        public var connectTimeout: TimeAmount
        /// The most QoS 1 and 2 publishes this client has in flight (sent, not yet completely acknowledged);
        /// a 5.0 server's Receive Maximum lowers it ([MQTT-3.3.4-7]). Default 1,024.
        public var maxInflightPublishes: Int
        /// The most QoS 1 and 2 publishes waiting for an inflight slot; `publish` throws
        /// `MQTTClientError.publishQueueFull` beyond it. Default 10,000.
        public var maxQueuedPublishes: Int
        /// The most received messages the `messages` stream buffers for a slow reader. When it is full the
        /// connection closes with `MQTTClientError.messageBufferFull` and the message that did not fit is not
        /// acknowledged, so the server keeps it for a resumed session. Default 65,536.
        public var maxBufferedMessages: Int

        /// A configuration with the documented defaults for everything not given.
        public init(
            host: String = "127.0.0.1",
            port: Int = 1883,
            clientIdentifier: String = Configuration.randomClientIdentifier(),
            protocolVersion: MQTTProtocolVersion = .v3_1_1,
            cleanStart: Bool = true,
            keepAliveSeconds: UInt16 = 60
        ) {
            self.host = host
            self.port = port
            self.clientIdentifier = clientIdentifier
            self.protocolVersion = protocolVersion
            self.cleanStart = cleanStart
            self.keepAliveSeconds = keepAliveSeconds
            self.pingResponseTimeout = nil
            self.username = nil
            self.password = nil
            self.will = nil
            self.sessionExpiryIntervalSeconds = 0
            self.receiveMaximum = 65_535
            self.topicAliasMaximum = 16
            self.userProperties = []
            self.maxPacketSizeBytes = 16 * 1024 * 1024
            self.connectTimeout = .seconds(10)
            self.maxInflightPublishes = 1_024
            self.maxQueuedPublishes = 10_000
            self.maxBufferedMessages = 65_536
        }

        /// `"swift-"` followed by 16 random hexadecimal digits.
        public static func randomClientIdentifier() -> String {
            let digits = String(UInt64.random(in: .min ... .max), radix: 16)
            return "swift-" + String(repeating: "0", count: 16 - digits.count) + digits
        }

        /// The CONNECT properties (5.0) this configuration asks for; empty for 3.1/3.1.1.
        var connectProperties: MQTTProperties {
            guard protocolVersion.hasProperties else { return [] }
            var properties = MQTTProperties()
            if sessionExpiryIntervalSeconds > 0 {
                properties.append(.sessionExpiryInterval(sessionExpiryIntervalSeconds))
            }
            if receiveMaximum < 65_535 {
                properties.append(.receiveMaximum(receiveMaximum))
            }
            if maxPacketSizeBytes < MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes {
                properties.append(.maximumPacketSize(UInt32(clamping: maxPacketSizeBytes)))
            }
            if topicAliasMaximum > 0 {
                properties.append(.topicAliasMaximum(topicAliasMaximum))
            }
            for (name, value) in userProperties {
                properties.append(.userProperty(name, value))
            }
            return properties
        }
    }
}
