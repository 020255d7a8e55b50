import ArgumentParser
import LMQClient
import MQTTCore

/// A server application sending commands to devices: no MQTT connection, the messages go straight into
/// the store, where they are dispatched like an MQTT PUBLISH — devices subscribed to `cmd/device-7`,
/// `cmd/+` or `cmd/#` get them.
@main
struct ServerProducerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-example-server-producer",
        abstract: "Send messages to MQTT devices from a server application, through the store."
    )

    @Option(help: "Name servers, \"host:port;host:port\" (default: $NAMESRV_ADDR, else 127.0.0.1:9876).")
    var namesrv: String?

    @Option(name: .shortAndLong, help: "Topic to send to.")
    var topic = "cmd/device-7"

    @Option(name: .shortAndLong, help: "Payload text; with --count above 1 a sequence number is appended.")
    var message = "reboot"

    @Option(help: "How many messages to send.")
    var count = 1

    @Option(help: "Pause between messages, in milliseconds.")
    var intervalMilliseconds = 1000

    @Option(help: "Quality of service devices get the message with: 0, 1 or 2.")
    var qos = 1

    @Flag(help: "Keep the last message as the topic's retained message, for devices that subscribe later.")
    var retain = false

    func validate() throws {
        guard (0...2).contains(qos) else { throw ValidationError("--qos must be 0, 1 or 2") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        var configuration = LMQClientConfiguration()
        if let namesrv { configuration.nameServerAddresses = LMQClientConfiguration.parseAddresses(namesrv) }
        // Finds the store node through the name servers, as the gateways do.
        let producer = try await LMQProducer.start(configuration)

        for index in 1...count {
            let payload = count == 1 ? message : "\(message) \(index)"
            do {
                // Returns once the store node holds the message as durable.
                let receipt = try await producer.send(topic: topic, payload: payload, qos: MQTTQoS(rawValue: UInt8(qos))!, retain: retain)
                let queues = receipt.queueOffsets.map { "\($0.queue):\($0.offset)" }.joined(separator: " ")
                print("sent to \(topic) [qos \(qos)]: \(payload) (queue offsets \(queues))")
            } catch {
                await producer.shutdown()
                throw error
            }
            if index < count {
                try await Task.sleep(for: .milliseconds(intervalMilliseconds))
            }
        }

        await producer.shutdown()
    }
}
