import MQTTCore

/// One subscription of a persistent session: the topic filter with its options, and its v5 subscription
/// identifier (§3.8.2.1.2), which is sent back in every PUBLISH it matches.
public struct StoredSubscription: Sendable, Hashable {
    /// The topic filter (``Subscription/topicFilter``, including any `$share/{ShareName}/` prefix) and the
    /// options: maximum QoS, No Local, Retain As Published, Retain Handling.
    public var subscription: Subscription
    /// The Subscription Identifier, 1 ... 268,435,455, or `nil` when the SUBSCRIBE carried none.
    public var subscriptionIdentifier: UInt32?

    public init(_ subscription: Subscription, subscriptionIdentifier: UInt32? = nil) {
        self.subscription = subscription
        self.subscriptionIdentifier = subscriptionIdentifier
    }

    /// The topic filter string; a session has at most one subscription per filter [MQTT-3.8.4-3].
    public var topicFilter: String { subscription.topicFilter }

    /// The largest Subscription Identifier: a variable byte integer of up to four bytes (§3.8.2.1.2).
    public static let maximumSubscriptionIdentifier: UInt32 = 268_435_455
}
