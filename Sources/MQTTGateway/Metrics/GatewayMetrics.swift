import Foundation
import MQTTCore
import NIOCore
import Prometheus

/// The gateway's counters, gauges and histograms, created once in a given registry. Each is a
/// swift-prometheus collector (atomics inside), so counting a message costs an atomic add and no lock.
/// Every labelled series is created up front (one per QoS, per close reason, per drop reason), so the hot
/// paths only index an array. docs/metrics.md lists them all.
///
/// The registry is a dependency rather than the process-wide `MetricsSystem`, so several gateways in one
/// process (the tests) each count their own.
public final class GatewayMetrics: Sendable {
    /// Where the collectors live: what `/metrics` exposes.
    public let registry: PrometheusCollectorRegistry
    /// When this object was made: the node's start, for uptime.
    public let startedAt: Date

    /// Open network connections (accepted and not closed).
    let connections: Gauge
    let connectionsAccepted: Counter
    /// By `CloseReason.Kind`, in `allCases` order.
    private let connectionsClosed: [Counter]
    /// By QoS 0, 1, 2.
    private let messagesReceived: [Counter]
    private let messagesSent: [Counter]
    let bytesReceived: Counter
    let bytesSent: Counter
    /// By `DropReason`, in `allCases` order.
    private let messagesDropped: [Counter]
    let authenticationFailures: Counter
    let storeAppendDuration: DurationHistogram
    let lmqQueues: Gauge
    let sessionsConnected: Gauge
    let retainedMessages: Gauge
    /// By `LimitCounters.Event`, in `allCases` order.
    private let limitEvents: [Counter]

    /// Why a message was not delivered to a subscriber (No Local is a rule, not a drop, and is not counted).
    public enum DropReason: String, Sendable, CaseIterable {
        /// Larger than the client's Maximum Packet Size ([MQTT-3.1.2-25]).
        case packetTooLarge = "packet_too_large"
        /// Its Message Expiry Interval passed before delivery ([MQTT-3.3.2-5]).
        case expired
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        startedAt = Date()
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "mqtt", metricName: metric, unitName: unit, helpText: help)
        }
        connections = registry.makeGauge(descriptor: name("connections", "", "Open MQTT network connections."))
        connectionsAccepted = registry.makeCounter(descriptor: name("connections_accepted", "total", "Network connections accepted."))
        connectionsClosed = ServerConnectionStateMachine.CloseReason.Kind.allCases.map { kind in
            registry.makeCounter(
                descriptor: name("connections_closed", "total", "Network connections closed, by reason."), labels: [("reason", Self.label(kind))]
            )
        }
        messagesReceived = MQTTQoS.allQoS.map { qos in
            registry.makeCounter(
                descriptor: name("messages_received", "total", "PUBLISH packets received from clients, by QoS."), labels: [("qos", "\(qos.rawValue)")]
            )
        }
        messagesSent = MQTTQoS.allQoS.map { qos in
            registry.makeCounter(
                descriptor: name("messages_sent", "total", "PUBLISH packets written to clients (resends included), by QoS."),
                labels: [("qos", "\(qos.rawValue)")]
            )
        }
        bytesReceived = registry.makeCounter(descriptor: name("bytes_received", "total", "Bytes read from MQTT connections."))
        bytesSent = registry.makeCounter(descriptor: name("bytes_sent", "total", "Bytes written to MQTT connections."))
        messagesDropped = DropReason.allCases.map { reason in
            registry.makeCounter(
                descriptor: name("messages_dropped", "total", "Messages not delivered to a subscriber, by reason."), labels: [("reason", reason.rawValue)]
            )
        }
        authenticationFailures = registry.makeCounter(descriptor: name("auth_failures", "total", "CONNECTs refused by the authenticator."))
        storeAppendDuration = registry.makeDurationHistogram(
            descriptor: name("store_append_duration", "seconds", "Time from handing a PUBLISH to the store until it is held per the flush policy."),
            buckets: [
                .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                .milliseconds(500), .seconds(1),
            ]
        )
        lmqQueues = registry.makeGauge(descriptor: name("lmq_queues", "", "Light message queues in the store."))
        sessionsConnected = registry.makeGauge(descriptor: name("sessions_connected", "", "Clients with a session attached on this node."))
        retainedMessages = registry.makeGauge(descriptor: name("retained_messages", "", "Retained messages in the store."))
        limitEvents = LimitCounters.Event.allCases.map { event in
            registry.makeCounter(
                descriptor: name("limit_events", "total", "Times a limit or an access rule acted, by event."), labels: [("event", event.rawValue)]
            )
        }
    }

    /// A limit or an access rule acted `amount` times (LimitCounters).
    func limitEvent(_ event: LimitCounters.Event, _ amount: Int) {
        guard let index = LimitCounters.Event.allCases.firstIndex(of: event) else { return }
        limitEvents[index].increment(by: Int64(amount))
    }

    static func label(_ kind: ServerConnectionStateMachine.CloseReason.Kind) -> String {
        switch kind {
        case .clientDisconnected: return "client_disconnected"
        case .connectionLost: return "connection_lost"
        case .protocolViolation: return "protocol_violation"
        case .connectionRefused: return "connection_refused"
        case .connectTimeout: return "connect_timeout"
        case .keepAliveTimeout: return "keep_alive_timeout"
        case .sessionTakenOver: return "session_taken_over"
        case .serverShuttingDown: return "server_shutting_down"
        case .serverError: return "server_error"
        case .limitExceeded: return "limit_exceeded"
        }
    }

    // MARK: - Counting

    func connectionOpened() {
        connections.increment()
        connectionsAccepted.increment()
    }

    func connectionClosed(_ kind: ServerConnectionStateMachine.CloseReason.Kind) {
        connections.decrement()
        connectionsClosed[Self.index(of: kind)].increment()
    }

    func messageReceived(qos: MQTTQoS) {
        messagesReceived[Int(qos.rawValue)].increment()
    }

    func messageSent(qos: MQTTQoS) {
        messagesSent[Int(qos.rawValue)].increment()
    }

    /// Adds a connection's counts gathered since its last report (`MessageCounts`): the shared counters
    /// are touched once per event-loop turn of the connection, not once per message.
    func add(_ counts: MessageCounts) {
        for qos in 0..<3 {
            if counts.received[qos] > 0 { messagesReceived[qos].increment(by: counts.received[qos]) }
            if counts.sent[qos] > 0 { messagesSent[qos].increment(by: counts.sent[qos]) }
        }
    }

    /// Messages in and out by QoS, counted by one connection between two reports.
    struct MessageCounts {
        var received: [Int64] = [0, 0, 0]
        var sent: [Int64] = [0, 0, 0]
        var isEmpty: Bool { received == [0, 0, 0] && sent == [0, 0, 0] }
    }

    func received(bytes: Int) {
        bytesReceived.increment(by: Int64(bytes))
    }

    func sent(bytes: Int) {
        bytesSent.increment(by: Int64(bytes))
    }

    func messageDropped(_ reason: DropReason) {
        messagesDropped[DropReason.allCases.firstIndex(of: reason)!].increment()
    }

    func authenticationFailed() {
        authenticationFailures.increment()
    }

    func storeAppended(since start: NIODeadline) {
        storeAppendDuration.record(.nanoseconds(Int64((NIODeadline.now() - start).nanoseconds)))
    }

    private static func index(of kind: ServerConnectionStateMachine.CloseReason.Kind) -> Int {
        ServerConnectionStateMachine.CloseReason.Kind.allCases.firstIndex(of: kind)!
    }

    // MARK: - Reading

    /// The value of every series, summed over labels, by metric name (`mqtt_messages_received_total`).
    /// Read from the exposition, because the collectors have no getters: that keeps counting to one atomic
    /// add, and reading (every `sysInterval`, or a test) pays the parse instead.
    public func totals() -> [String: Double] {
        var totals: [String: Double] = [:]
        let text = String(decoding: exposition(), as: UTF8.self)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            let name = series.firstIndex(of: "{").map { series[..<$0] } ?? series
            totals[String(name), default: 0] += value
        }
        return totals
    }

    /// The Prometheus text exposition (format 0.0.4) of every collector in `registry`.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

extension GatewayMetrics.DropReason {
    init(_ reason: ServerConnectionStateMachine.DeliveryDropReason) {
        switch reason {
        case .packetTooLarge: self = .packetTooLarge
        }
    }
}

extension TopicName {
    /// `$SYS` and below: written by the node only ([MQTT-4.7.2-1] keeps `$` topics for the server's use).
    var isReservedForServer: Bool { string == "$SYS" || string.hasPrefix("$SYS/") }
}

extension MQTTQoS {
    /// 0, 1, 2: the index of each QoS in per-QoS arrays.
    static let allQoS: [MQTTQoS] = [.atMostOnce, .atLeastOnce, .exactlyOnce]
}
