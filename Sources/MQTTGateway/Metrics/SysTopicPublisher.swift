import Foundation
import LMQStore
import NIOCore

/// Publishes the node's counters as retained messages under `$SYS/broker/`, mosquitto style, every
/// `intervalSeconds`, so `mosquitto_sub -t '$SYS/#'` shows them. Values are plain decimal text; the
/// list is in docs/metrics.md. Clients cannot publish under `$SYS/` (see `MQTTConnectionHandler`).
final class SysTopicPublisher: Sendable {
    /// What `$SYS/broker/version` says.
    static let version = "rocketmq-mqtt-swift"

    private let task: Task<Void, Never>

    init(services: GatewayServices, intervalSeconds: Int) {
        precondition(intervalSeconds > 0)
        task = Task {
            while !Task.isCancelled {
                await Self.publishOnce(services: services)
                try? await Task.sleep(for: .seconds(intervalSeconds))
            }
        }
    }

    func stop() async {
        task.cancel()
        await task.value
    }

    /// The topics and values of one update.
    static func values(services: GatewayServices, retainedCount: Int?) -> [(topic: String, value: String)] {
        let metrics = services.metrics
        let totals = metrics.totals()
        func total(_ name: String) -> String { String(Int(totals[name] ?? 0)) }
        var values: [(String, String)] = [
            ("$SYS/broker/version", version),
            ("$SYS/broker/uptime", "\(Int(Date().timeIntervalSince(metrics.startedAt))) seconds"),
            ("$SYS/broker/clients/connected", "\(services.sessions.count)"),
            ("$SYS/broker/connections/open", "\(services.openConnections.count)"),
            ("$SYS/broker/connections/accepted", total("mqtt_connections_accepted_total")),
            ("$SYS/broker/messages/received", total("mqtt_messages_received_total")),
            ("$SYS/broker/messages/sent", total("mqtt_messages_sent_total")),
            ("$SYS/broker/publish/messages/dropped", total("mqtt_messages_dropped_total")),
            ("$SYS/broker/bytes/received", total("mqtt_bytes_received_total")),
            ("$SYS/broker/bytes/sent", total("mqtt_bytes_sent_total")),
            ("$SYS/broker/store/queues", "\(services.store.queueCount)"),
        ]
        if let retainedCount { values.append(("$SYS/broker/retained messages/count", "\(retainedCount)")) }
        return values
    }

    static func publishOnce(services: GatewayServices) async {
        let retainedCount = try? await services.metadata.retainedCount()
        for (topic, value) in values(services: services, retainedCount: retainedCount) {
            do {
                _ = try await services.publish(LMQMessage(topic: topic, payload: ByteBuffer(string: value), qos: .atMostOnce, retain: true))
            } catch {
                services.logger.warning("publishing \(topic) failed: \(error)")
                return
            }
        }
    }
}
