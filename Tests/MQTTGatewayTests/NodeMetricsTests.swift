import Foundation
import Testing

/// The real `mqtt-node`'s observability: `/metrics` fetched over HTTP after MQTT traffic and parsed by
/// Python's `prometheus_client` text-format parser, and the `$SYS/broker/...` topics as `mosquitto_sub`
/// sees them. The exporter listens on a port chosen by the system, read from the node's log line.
@Suite(
    "mqtt-node metrics and $SYS",
    .enabled(if: PrometheusParser.isAvailable, "python3 with prometheus_client, mosquitto clients and a built mqtt-node are needed"),
    .timeLimit(.minutes(3))
)
struct NodeMetricsTests {
    static let options = NodeProcess.Options(connect: [
        "enableExporter": "true", "exporterPort": "0", "exporterListenAddress": "127.0.0.1", "sysInterval": "1",
    ])

    /// What metrics_scrape.py prints.
    struct Scrape: Decodable {
        struct Family: Decodable {
            var type: String
            var samples: [Sample]
        }
        struct Sample: Decodable {
            var name: String
            var labels: [String: String]
            var value: Double

            init(from decoder: any Decoder) throws {
                var container = try decoder.unkeyedContainer()
                name = try container.decode(String.self)
                labels = try container.decode([String: String].self)
                value = try container.decode(Double.self)
            }
        }
        var families: [String: Family]
        var content_type: String

        /// The sum of the family's samples named `sample` whose labels include `labels`.
        func value(_ family: String, sample: String? = nil, _ labels: [String: String] = [:]) -> Double? {
            guard let family = families[family] else { return nil }
            let matching = family.samples.filter { entry in
                (sample == nil || entry.name == sample) && labels.allSatisfy { entry.labels[$0.key] == $0.value }
            }
            return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
        }
    }

    static func exporterPort(_ node: NodeProcess) async throws -> Int {
        try await node.waitForLog("metrics exporter", timeout: .seconds(20)) { log in
            NodeProcess.logValue("address", onLineContaining: "metrics exporter listening", in: log).flatMap(NodeProcess.port(of:))
        }
    }

    static func scrape(_ node: NodeProcess, port: Int) async throws -> Scrape {
        let python = try #require(PahoScenario.python)
        let output = node.directory + "/scrape-\(UUID().uuidString).out"
        let child = try SpawnedProcess(
            executable: python, arguments: [PahoScenario.directory + "/metrics_scrape.py", "--url", "http://127.0.0.1:\(port)/metrics"],
            environment: NodeProcess.childEnvironment(["PYTHONDONTWRITEBYTECODE": "1"]),
            standardOutputPath: output, standardErrorPath: output + ".err"
        )
        guard let status = await child.waitForExit(timeout: .seconds(30)) else {
            await child.forceKill()
            throw NodeProcess.Failure("metrics_scrape.py did not finish")
        }
        guard status == 0, let line = child.standardOutput.split(separator: "\n").last else {
            throw NodeProcess.Failure("metrics_scrape.py exited with \(status): \(child.standardError)")
        }
        return try JSONDecoder().decode(Scrape.self, from: Data(line.utf8))
    }

    @Test("/metrics parses as Prometheus text and its counters follow MQTT traffic")
    func exposition() async throws {
        try await withNode(Self.options) { node in
            let port = try await Self.exporterPort(node)
            let before = try await Self.scrape(node, port: port)
            #expect(before.content_type.hasPrefix("text/plain; version=0.0.4"))
            #expect(before.families["mqtt_connections"]?.type == "gauge")
            #expect(before.families["mqtt_messages_received"]?.type == "counter")
            #expect(before.families["mqtt_store_append_duration_seconds"]?.type == "histogram")

            let prefix = PahoScenario.makePrefix()
            let subscriber = try await MosquittoClient.subscribe(
                node: node, protocolName: "mqttv311", ["-t", "\(prefix)/#", "-q", "1", "-C", "20", "-W", "30", "-F", "MSG %t %p"]
            )
            let lines = (0..<10).map { "m\($0)" }
            try await MosquittoClient.publish(node: node, protocolName: "mqttv311", ["-t", "\(prefix)/a", "-q", "1", "-l"], input: lines)
            try await MosquittoClient.publish(node: node, protocolName: "mqttv5", ["-t", "\(prefix)/b", "-q", "0", "-l"], input: lines)
            #expect(await subscriber.waitForExit(timeout: .seconds(30)) == 0)
            #expect(MosquittoClient.messages(subscriber).count == 20)
            // A client that fails authentication is not possible here (anonymous node); a refused CONNECT is
            // counted under its close reason instead.

            let after = try await Self.scrape(node, port: port)
            let receivedQoS1 = after.value("mqtt_messages_received", sample: "mqtt_messages_received_total", ["qos": "1"]) ?? 0
            let receivedQoS0 = after.value("mqtt_messages_received", sample: "mqtt_messages_received_total", ["qos": "0"]) ?? 0
            #expect(receivedQoS1 >= 10)
            #expect(receivedQoS0 >= 10)
            // Delivered at min(published, granted 1): ten at QoS 1, ten at QoS 0.
            #expect((after.value("mqtt_messages_sent", sample: "mqtt_messages_sent_total") ?? 0) >= 20)
            #expect((after.value("mqtt_connections_accepted", sample: "mqtt_connections_accepted_total") ?? 0) >= 3)
            #expect((after.value("mqtt_connections_closed", sample: "mqtt_connections_closed_total", ["reason": "client_disconnected"]) ?? 0) >= 2)
            let bytesIn = after.value("mqtt_bytes_received", sample: "mqtt_bytes_received_total") ?? 0
            #expect(bytesIn > (before.value("mqtt_bytes_received", sample: "mqtt_bytes_received_total") ?? 0) + 20 * 10)
            #expect((after.value("mqtt_bytes_sent", sample: "mqtt_bytes_sent_total") ?? 0) > 20 * 10)
            // Every QoS 1 PUBLISH went through the store's append path: the histogram counted it.
            #expect((after.value("mqtt_store_append_duration_seconds", sample: "mqtt_store_append_duration_seconds_count") ?? 0) >= 20)
            #expect((after.value("mqtt_lmq_queues") ?? 0) >= 1)
            #expect(after.value("mqtt_auth_failures", sample: "mqtt_auth_failures_total") == 0)
        }
    }

    @Test("$SYS/broker/... topics are published, retained, every sysInterval; clients cannot publish under $SYS")
    func sysTopics() async throws {
        try await withNode(Self.options) { node in
            let prefix = PahoScenario.makePrefix()
            let lines = (0..<5).map { "m\($0)" }
            try await MosquittoClient.publish(node: node, protocolName: "mqttv311", ["-t", "\(prefix)/a", "-q", "1", "-l"], input: lines)
            // Refused: 3.1.1 acknowledges and drops, 5.0 answers PUBACK 0x87 (mosquitto_pub then fails).
            _ = try await MosquittoClient.run(
                MosquittoClient.pub, node: node, protocolName: "mqttv311", ["-t", "$SYS/broker/version", "-m", "forged", "-q", "1", "-r"]
            )
            let v5 = try await MosquittoClient.run(
                MosquittoClient.pub, node: node, protocolName: "mqttv5", ["-t", "$SYS/broker/version", "-m", "forged", "-q", "1", "-r"]
            )
            // mosquitto_pub reports the PUBACK's reason code as a warning and still exits 0.
            #expect((v5.stdout + v5.stderr).contains("Not authorized"), "a 5.0 PUBLISH to $SYS must be refused: \(v5.stdout) \(v5.stderr)")

            // The values are retained and refreshed every second: poll until they show the traffic (bounded).
            var values: [String: String] = [:]
            for _ in 0..<15 {
                let sub = try await MosquittoClient.run(
                    MosquittoClient.sub, node: node, protocolName: "mqttv311", ["-t", "$SYS/#", "-v", "-W", "2"], timeout: .seconds(20)
                )
                values = [:]
                for line in sub.stdout.split(separator: "\n") {
                    guard let space = line.firstIndex(of: " ") else { continue }
                    values[String(line[..<space])] = String(line[line.index(after: space)...])
                }
                if let received = values["$SYS/broker/messages/received"].flatMap(Int.init), received >= 5 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(values["$SYS/broker/messages/received"].flatMap(Int.init).map { $0 >= 5 } == true, "\(values)")
            // The subscriber itself is connected while it reads the values published before it came, so >= 0.
            #expect(values["$SYS/broker/clients/connected"].flatMap(Int.init) != nil, "\(values)")
            #expect(values["$SYS/broker/uptime"]?.hasSuffix(" seconds") == true)
            #expect(values["$SYS/broker/version"] == "rocketmq-mqtt-swift", "a client's PUBLISH to $SYS must not replace the node's")
            #expect(values["$SYS/broker/bytes/received"].flatMap(Int.init).map { $0 > 0 } == true)
        }
    }
}

/// Python's prometheus_client, which the metrics tests parse `/metrics` with.
enum PrometheusParser {
    static let isAvailable: Bool = MosquittoClient.isAvailable && PahoScenario.pythonSucceeds("import prometheus_client.parser")
}
