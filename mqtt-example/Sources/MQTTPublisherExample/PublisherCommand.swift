import ArgumentParser
import MQTTClient

/// Publishes a few messages to one topic, waiting for each to be acknowledged as its QoS requires.
@main
struct PublisherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-example-publisher",
        abstract: "Publish messages to an MQTT server."
    )

    @Option(help: "Server host name or address.")
    var host = "127.0.0.1"

    @Option(help: "Server port.")
    var port = 1883

    @Option(name: .shortAndLong, help: "Topic to publish to.")
    var topic = "sensors/1/temperature"

    @Option(name: .shortAndLong, help: "Payload text; with --count above 1 a sequence number is appended.")
    var message = "21.5"

    @Option(help: "Quality of service: 0, 1 or 2.")
    var qos = 1

    @Option(help: "How many messages to publish.")
    var count = 1

    @Option(help: "Pause between messages, in milliseconds.")
    var intervalMilliseconds = 1000

    @Flag(help: "Ask the server to retain the message for later subscribers.")
    var retain = false

    @Option(help: "MQTT version: 3.1.1 or 5.")
    var mqttVersion = "3.1.1"

    func validate() throws {
        guard MQTTQoS(rawValue: UInt8(clamping: qos)) != nil, qos >= 0 else { throw ValidationError("--qos must be 0, 1 or 2") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard mqttVersion == "3.1.1" || mqttVersion == "5" else { throw ValidationError("--mqtt-version must be 3.1.1 or 5") }
    }

    func run() async throws {
        let client = MQTTClient(configuration: MQTTClient.Configuration(
            host: host, port: port, protocolVersion: mqttVersion == "5" ? .v5 : .v3_1_1
        ))
        let connAck = try await client.connect()
        print("connected to \(host):\(port) (MQTT \(mqttVersion), session present: \(connAck.sessionPresent))")

        let qos = MQTTQoS(rawValue: UInt8(qos))!
        for index in 1...count {
            let payload = count == 1 ? message : "\(message) \(index)"
            // Returns after the write (QoS 0), PUBACK (QoS 1) or PUBCOMP (QoS 2).
            try await client.publish(to: topic, payload: payload, qos: qos, retain: retain)
            print("published to \(topic) [qos \(qos.rawValue)]: \(payload)")
            if index < count {
                try await Task.sleep(for: .milliseconds(intervalMilliseconds))
            }
        }

        try await client.disconnect()
        await client.shutdown()
    }
}
