extension ServerConnectionStateMachine {
    /// What the server accepts from one client and announces to it: the limits of one connection.
    ///
    /// Every value has a documented default. A v5 client learns the ones that differ from the protocol's
    /// defaults from the CONNACK properties (§3.2.2.3); a 3.1/3.1.1 client learns nothing and is held to
    /// the same limits where the protocol lets the server enforce them.
    public struct Configuration: Sendable, Hashable {
        /// How long a connection may take from `connectionOpened` to its CONNACK: the client's CONNECT,
        /// authentication and the session attach all count. Must be above 0. Default 10.
        public var connectTimeoutSeconds: UInt32

        /// The largest packet the server accepts, fixed header included; announced as Maximum Packet Size
        /// (§3.2.2.3.6) when below the protocol's ceiling. The channel's decoder must use the same value
        /// (`MQTTPacketDecoder.Limits.maxPacketSizeBytes`): it refuses bigger packets before buffering them.
        /// Default 1 MiB.
        public var maximumPacketSizeBytes: Int

        /// Receive Maximum (§3.2.2.3.3): how many QoS 1 and QoS 2 PUBLISHes a v5 client may have
        /// unacknowledged (no PUBACK or PUBCOMP yet) at once; one more is a DISCONNECT 0x93. 1 ... 65,535.
        /// Default 128.
        public var receiveMaximum: UInt16

        /// Topic Alias Maximum (§3.2.2.3.8): the highest inbound topic alias a v5 client may use; 0 turns
        /// inbound aliases off. Default 64.
        public var topicAliasMaximum: UInt16

        /// The highest QoS a client may publish with, and the ceiling of granted subscription QoS
        /// (§3.2.2.3.4). Default QoS 2.
        public var maximumQoS: MQTTQoS

        /// Whether the server keeps retained messages (§3.2.2.3.5). Default true.
        public var retainAvailable: Bool

        /// Whether subscriptions may use `+` and `#` (§3.2.2.3.11). Default true.
        public var wildcardSubscriptionAvailable: Bool

        /// Whether `$share/{ShareName}/{filter}` subscriptions are accepted (§3.2.2.3.13). Default true.
        public var sharedSubscriptionAvailable: Bool

        /// Whether SUBSCRIBE may carry a Subscription Identifier (§3.2.2.3.12). Default true.
        public var subscriptionIdentifiersAvailable: Bool

        /// When set, the keep alive a v5 client must use instead of its own, sent as Server Keep Alive
        /// (§3.2.2.3.14) when it differs from the client's. 3.1/3.1.1 have no way to say so: their clients
        /// keep their own value. Default nil (the client's value is used, [MQTT-3.2.2-22]).
        public var serverKeepAliveSeconds: UInt16?

        /// When set, the longest Session Expiry Interval the server grants; a v5 client asking for more is
        /// told the granted value in CONNACK (§3.2.2.3.2). Default nil (whatever the client asks).
        public var maximumSessionExpiryIntervalSeconds: UInt32?

        /// The most topic filters one SUBSCRIBE or UNSUBSCRIBE may carry. A SUBSCRIBE with more is answered
        /// with a failure code for every filter. Default 100.
        public var maximumTopicFiltersPerPacket: Int

        /// The longest client identifier accepted, in UTF-8 bytes ([MQTT-3.1.3-5] lets a server limit
        /// identifiers above 23 bytes). The default, 200, keeps the store's `%LMQ%<clientId>` group and
        /// `/p2p/<clientId>/` queue names within RocketMQ's 255-character limit.
        public var maximumClientIdentifierLengthBytes: Int

        /// The first part of identifiers the server assigns to clients that send an empty one; the
        /// connection identifier given to the state machine follows it. Default `"auto-"`.
        public var assignedClientIdentifierPrefix: String

        /// A connection with keep alive K is closed when nothing arrived for `keepAliveMultiplier × K`
        /// ([MQTT-3.1.2-22]; 3.1.1: [MQTT-3.1.2-24]). Must be at least 1. Default 1.5, as the spec says.
        public var keepAliveMultiplier: Double

        /// The most QoS 1/2 deliveries in flight to one client, whatever Receive Maximum it announces
        /// (3.1/3.1.1 clients announce none). Default 32.
        public var maximumInflightDeliveries: Int

        /// How many packets a client may send after CONNECT before its CONNACK; they are held and processed
        /// once the connection is accepted ([MQTT-3.1.4-6]). One more closes the connection. Default 16.
        public var maximumPacketsBeforeConnAck: Int

        /// Whether deliveries to v5 clients that announce a Topic Alias Maximum use topic aliases
        /// (§3.3.2.3.4). Default true.
        public var outboundTopicAliasesEnabled: Bool

        /// Whether CONNACK refusals and server DISCONNECTs to v5 clients carry a Reason String saying why.
        /// It is left out when it would make the packet exceed the client's Maximum Packet Size
        /// ([MQTT-3.2.2-19], [MQTT-3.14.2-3]). Default true.
        public var reasonStringsEnabled: Bool

        public init(
            connectTimeoutSeconds: UInt32 = 10,
            maximumPacketSizeBytes: Int = 1_048_576,
            receiveMaximum: UInt16 = 128,
            topicAliasMaximum: UInt16 = 64,
            maximumQoS: MQTTQoS = .exactlyOnce,
            retainAvailable: Bool = true,
            wildcardSubscriptionAvailable: Bool = true,
            sharedSubscriptionAvailable: Bool = true,
            subscriptionIdentifiersAvailable: Bool = true,
            serverKeepAliveSeconds: UInt16? = nil,
            maximumSessionExpiryIntervalSeconds: UInt32? = nil,
            maximumTopicFiltersPerPacket: Int = 100,
            maximumClientIdentifierLengthBytes: Int = 200,
            assignedClientIdentifierPrefix: String = "auto-",
            keepAliveMultiplier: Double = 1.5,
            maximumInflightDeliveries: Int = 32,
            maximumPacketsBeforeConnAck: Int = 16,
            outboundTopicAliasesEnabled: Bool = true,
            reasonStringsEnabled: Bool = true
        ) {
            precondition(connectTimeoutSeconds > 0, "a connection must have a connect timeout")
            precondition(
                maximumPacketSizeBytes >= 2 && maximumPacketSizeBytes <= MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes,
                "Maximum Packet Size must be 2 ... \(MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes) bytes"
            )
            precondition(receiveMaximum > 0, "Receive Maximum 0 is a Protocol Error (§3.2.2.3.3)")
            precondition(maximumTopicFiltersPerPacket > 0)
            precondition(maximumClientIdentifierLengthBytes >= 23, "[MQTT-3.1.3-5]: identifiers of 1 to 23 bytes must be accepted")
            precondition(keepAliveMultiplier >= 1)
            precondition(maximumInflightDeliveries > 0 && maximumInflightDeliveries <= Int(UInt16.max))
            precondition(maximumPacketsBeforeConnAck >= 0)
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.maximumPacketSizeBytes = maximumPacketSizeBytes
            self.receiveMaximum = receiveMaximum
            self.topicAliasMaximum = topicAliasMaximum
            self.maximumQoS = maximumQoS
            self.retainAvailable = retainAvailable
            self.wildcardSubscriptionAvailable = wildcardSubscriptionAvailable
            self.sharedSubscriptionAvailable = sharedSubscriptionAvailable
            self.subscriptionIdentifiersAvailable = subscriptionIdentifiersAvailable
            self.serverKeepAliveSeconds = serverKeepAliveSeconds
            self.maximumSessionExpiryIntervalSeconds = maximumSessionExpiryIntervalSeconds
            self.maximumTopicFiltersPerPacket = maximumTopicFiltersPerPacket
            self.maximumClientIdentifierLengthBytes = maximumClientIdentifierLengthBytes
            self.assignedClientIdentifierPrefix = assignedClientIdentifierPrefix
            self.keepAliveMultiplier = keepAliveMultiplier
            self.maximumInflightDeliveries = maximumInflightDeliveries
            self.maximumPacketsBeforeConnAck = maximumPacketsBeforeConnAck
            self.outboundTopicAliasesEnabled = outboundTopicAliasesEnabled
            self.reasonStringsEnabled = reasonStringsEnabled
        }

        /// How long a connection with `keepAliveSeconds` may stay silent before it is closed, in ms.
        func keepAliveGraceMillis(_ keepAliveSeconds: UInt16) -> Int64 {
            Int64((Double(keepAliveSeconds) * 1_000 * keepAliveMultiplier).rounded(.up))
        }
    }
}
