import ArgumentParser
import MQTTClient

/// Subscribes to a topic filter and prints every message until stopped, `--count` messages arrived, or
/// the connection closes.
@main
struct SubscriberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-example-subscriber",
        abstract: "Print the messages an MQTT server delivers for a topic filter."
    )

    @Option(help: "Server host name or address.")
    var host = "127.0.0.1"

    @Option(help: "Server port.")
    var port = 1883

    @Option(name: .shortAndLong, help: "Topic filter to subscribe to; + and # are wildcards.")
    var topic = "sensors/#"

    @Option(help: "Maximum quality of service: 0, 1 or 2.")
    var qos = 1

    @Option(help: "Exit after this many messages (default: run until stopped).")
    var count: Int?

    @Option(help: "MQTT version: 3.1.1 or 5.")
    var mqttVersion = "3.1.1"

    func validate() throws {
        guard MQTTQoS(rawValue: UInt8(clamping: qos)) != nil, qos >= 0 else { throw ValidationError("--qos must be 0, 1 or 2") }
        guard mqttVersion == "3.1.1" || mqttVersion == "5" else { throw ValidationError("--mqtt-version must be 3.1.1 or 5") }
    }

    func run() async throws {
        let client = MQTTClient(configuration: MQTTClient.Configuration(
            host: host, port: port, protocolVersion: mqttVersion == "5" ? .v5 : .v3_1_1
        ))
        try await client.connect()
        let granted = try await client.subscribe(to: topic, qos: MQTTQoS(rawValue: UInt8(qos))!)
        print("subscribed to \(topic) on \(host):\(port), granted QoS \(granted.rawValue); Ctrl-C to stop")

        // If the connection closes, say why and end the message loop below by shutting the client down.
        let watcher = Task {
            if let reason = await client.waitUntilClosed() {
                print("connection closed: \(reason)")
            }
            await client.shutdown()
        }

        var received = 0
        for await message in client.messages {
            let flags = message.retain ? ", retained" : ""
            print("\(message.topic) [qos \(message.qos.rawValue)\(flags)]: \(message.payloadString)")
            received += 1
            if let count, received >= count { break }
        }

        try? await client.disconnect()
        await client.shutdown()
        await watcher.value
    }
}
