import Foundation
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NIOCore
import Prometheus
import Testing

/// `GatewayMetrics` on its own and inside in-process gateways: each gateway counts in its own registry, so
/// nothing here depends on a process-wide `MetricsSystem`.
@Suite("Gateway metrics")
struct GatewayMetricsTests {
    @Test("counters, gauges and the histogram appear in the exposition with their labels, and totals() sums them")
    func countsAndExposition() {
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry())
        metrics.connectionOpened()
        metrics.connectionOpened()
        metrics.connectionClosed(.clientDisconnected)
        metrics.messageReceived(qos: .atMostOnce)
        metrics.messageReceived(qos: .exactlyOnce)
        metrics.messageReceived(qos: .exactlyOnce)
        metrics.messageSent(qos: .atLeastOnce)
        metrics.received(bytes: 100)
        metrics.sent(bytes: 7)
        metrics.messageDropped(.expired)
        metrics.messageDropped(GatewayMetrics.DropReason(.packetTooLarge(sizeBytes: 10, limitBytes: 5)))
        metrics.authenticationFailed()
        metrics.storeAppended(since: NIODeadline.now() - .milliseconds(3))

        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains("# TYPE mqtt_connections gauge"))
        #expect(text.contains("mqtt_connections 1"))
        #expect(text.contains(#"mqtt_connections_closed_total{reason="client_disconnected"} 1"#))
        // Every close reason is a series from the start, so rates work before the first close of a kind.
        #expect(text.contains(#"mqtt_connections_closed_total{reason="keep_alive_timeout"} 0"#))
        #expect(text.contains(#"mqtt_messages_received_total{qos="2"} 2"#))
        #expect(text.contains(#"mqtt_messages_sent_total{qos="1"} 1"#))
        #expect(text.contains(#"mqtt_messages_dropped_total{reason="expired"} 1"#))
        #expect(text.contains(#"mqtt_messages_dropped_total{reason="packet_too_large"} 1"#))
        #expect(text.contains("# TYPE mqtt_store_append_duration_seconds histogram"))
        #expect(text.contains(#"mqtt_store_append_duration_seconds_bucket{le="0.005"} 1"#))
        #expect(text.contains(#"mqtt_store_append_duration_seconds_bucket{le="0.002"} 0"#))

        let totals = metrics.totals()
        #expect(totals["mqtt_connections_accepted_total"] == 2)
        #expect(totals["mqtt_messages_received_total"] == 3)
        #expect(totals["mqtt_bytes_received_total"] == 100)
        #expect(totals["mqtt_bytes_sent_total"] == 7)
        #expect(totals["mqtt_auth_failures_total"] == 1)
        #expect(totals["mqtt_messages_dropped_total"] == 2)
    }

    @Test("two gateways in one process count their own traffic")
    func gatewaysCountIndependently() async throws {
        let first = try await TestNode.start()
        let second = try await TestNode.start()
        let subscriber = try await first.client("metrics-sub", .v5)
        let publisher = try await first.client("metrics-pub", .v3_1_1)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "metrics/#", qos: .atLeastOnce)
        for index in 0..<5 {
            try await publisher.publish(to: "metrics/a", payload: "m\(index)", qos: .atLeastOnce)
        }
        try await publisher.publish(to: "metrics/b", payload: "zero", qos: .atMostOnce)
        _ = try await messages.wait(for: 6, timeout: .seconds(20))

        let totals = first.gateway.metrics.totals()
        #expect(totals["mqtt_messages_received_total"] == 6)
        #expect(totals["mqtt_messages_sent_total"].map { $0 >= 6 } == true)
        #expect(totals["mqtt_connections"] == 2)
        #expect(totals["mqtt_connections_accepted_total"] == 2)
        #expect(totals["mqtt_bytes_received_total"].map { $0 > 6 * 10 } == true)
        #expect(totals["mqtt_store_append_duration_seconds_count"] == 6)
        #expect(second.gateway.metrics.totals()["mqtt_messages_received_total"] == 0)

        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        // The closes are counted once the gateway sees the connections go (bounded wait).
        let deadline = ContinuousClock.now + .seconds(10)
        while first.gateway.metrics.totals()["mqtt_connections"] != 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let closed = first.gateway.metrics.totals()
        #expect(closed["mqtt_connections"] == 0)
        #expect(closed["mqtt_connections_closed_total"] == 2)
        await first.stop()
        await second.stop()
    }

    @Test("$SYS: one update publishes retained values a subscriber reads; a client's PUBLISH to $SYS is refused", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func sysTopics(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let publisher = try await node.client("sys-pub-\(version.rawValue)", version)
        try await publisher.publish(to: "sys/a", payload: "one", qos: .atLeastOnce)
        // v5: PUBACK 0x87, which the client reports as an error; 3.1.1: acknowledged and dropped.
        var refused = false
        do {
            try await publisher.publish(to: "$SYS/broker/version", payload: "forged", qos: .atLeastOnce, retain: true)
        } catch {
            refused = true
        }
        #expect(refused == (version == .v5))
        await SysTopicPublisher.publishOnce(services: node.gateway.services)

        let subscriber = try await node.client("sys-sub-\(version.rawValue)", version)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "$SYS/broker/#", qos: .atMostOnce)
        let expectedCount = SysTopicPublisher.values(services: node.gateway.services, retainedCount: 0).count
        let received = try await messages.wait(for: expectedCount, timeout: .seconds(10))
        var values: [String: String] = [:]
        for message in received { values[message.topic] = message.payloadString }
        #expect(values["$SYS/broker/version"] == SysTopicPublisher.version)
        #expect(values["$SYS/broker/messages/received"].flatMap(Int.init).map { $0 >= 1 } == true, "\(values)")
        #expect(values["$SYS/broker/clients/connected"] == "1")
        #expect(values["$SYS/broker/retained messages/count"] != nil)
        // A wildcard at the first level does not match $ topics ([MQTT-4.7.2-1]).
        #expect(received.allSatisfy { $0.topic.hasPrefix("$SYS/broker/") })

        for client in [subscriber, publisher] {
            try? await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }
}
