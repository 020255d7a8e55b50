import NIOConcurrencyHelpers

/// How often the gateway's limits and access rules acted, for logs, metrics and tests.
final class LimitCounters: Sendable {
    /// One kind of event counted.
    enum Event: String, Sendable, Hashable, CaseIterable {
        /// A connection closed at accept because `maxConn` connections were open.
        case connectionRefused = "connection_refused"
        /// A connection stopped being read because it sent faster than its rate limit.
        case inboundRateLimited = "inbound_rate_limited"
        /// A subscription refused by `maxSubscriptionsPerClient`.
        case subscriptionQuotaExceeded = "subscription_quota_exceeded"
        /// A message of a resumed session's backlog skipped by `maxQueuedMessagesPerSession`.
        case backlogMessageDropped = "backlog_message_dropped"
        /// A PUBLISH the ACL denied.
        case publishDenied = "publish_denied"
        /// A subscription the ACL denied.
        case subscribeDenied = "subscribe_denied"
        /// A will the ACL denied (it is never published).
        case willDenied = "will_denied"
    }

    private let counts = NIOLockedValueBox<[Event: Int]>([:])
    private let metrics: GatewayMetrics?

    init(metrics: GatewayMetrics? = nil) {
        self.metrics = metrics
    }

    func add(_ event: Event, _ amount: Int = 1) {
        counts.withLockedValue { $0[event, default: 0] += amount }
        metrics?.limitEvent(event, amount)
    }

    /// How many times `event` happened since the node started.
    func count(_ event: Event) -> Int {
        counts.withLockedValue { $0[event] ?? 0 }
    }
}
