import Foundation
@testable import MQTTGateway
import Testing

private let mosquittoClientsInstalled =
    FileManager.default.isExecutableFile(atPath: "/usr/bin/mosquitto_pub") && FileManager.default.isExecutableFile(atPath: "/usr/bin/mosquitto_sub")

@Suite("Gateway with mosquitto_pub / mosquitto_sub", .enabled(if: mosquittoClientsInstalled), .timeLimit(.minutes(1)))
struct GatewayMosquittoClientTests {
    @Test("mosquitto_sub on a wildcard receives what mosquitto_pub publishes at QoS 0 and 1", arguments: ["mqttv31", "mqttv311", "mqttv5"])
    func publishSubscribe(protocolName: String) async throws {
        let node = try await TestNode.start()
        let output = Pipe()
        let subscriber = Process()
        subscriber.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
        subscriber.arguments = [
            "-h", "127.0.0.1", "-p", "\(node.port)", "-V", protocolName, "-i", "mosq-\(protocolName)",
            "-t", "mosq/+/data", "-q", "1", "-C", "2", "-W", "20", "-v",
        ]
        subscriber.standardOutput = output
        try subscriber.run()
        defer { if subscriber.isRunning { subscriber.terminate() } }

        // The node holds the subscriber's session; a moment later its SUBSCRIBE has been answered.
        try await waitUntil("mosquitto_sub to connect", timeout: .seconds(10)) { node.gateway.connectedClientCount >= 1 }
        try await Task.sleep(for: .milliseconds(300))
        try await publish(port: node.port, protocolName: protocolName, topic: "mosq/1/data", message: "first", qos: 1)
        try await publish(port: node.port, protocolName: protocolName, topic: "mosq/2/data", message: "second", qos: 0)
        try await waitUntil("mosquitto_sub to exit", timeout: .seconds(20)) { !subscriber.isRunning }

        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(subscriber.terminationStatus == 0)
        #expect(text.split(separator: "\n") == ["mosq/1/data first", "mosq/2/data second"])
        await node.stop()
    }

    private func publish(port: Int, protocolName: String, topic: String, message: String, qos: Int) async throws {
        let publisher = Process()
        publisher.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_pub")
        publisher.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-V", protocolName, "-t", topic, "-m", message, "-q", "\(qos)"]
        try publisher.run()
        defer { if publisher.isRunning { publisher.terminate() } }
        // Polled, not waitUntilExit(): blocking a thread of the small cooperative pool could starve the
        // node that mosquitto_pub is waiting for.
        try await waitUntil("mosquitto_pub to exit", timeout: .seconds(10)) { !publisher.isRunning }
        #expect(publisher.terminationStatus == 0, "mosquitto_pub \(topic) exited with \(publisher.terminationStatus)")
    }
}
