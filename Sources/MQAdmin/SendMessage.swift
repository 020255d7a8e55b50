import ArgumentParser
import Foundation
import LMQClient
import Logging
import MQTTCore

struct SendMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sendMessage",
        abstract: "Send one message to a topic, as a server producer (LMQClient) does.",
        discussion: """
            The message is stored once and dispatched like an MQTT PUBLISH of the same topic: MQTT subscribers of \
            the topic and of every matching wildcard filter get it, and so do consumer groups. A first topic the \
            name servers do not know is created. Prints SEND_OK with the queues and offsets it got and the store \
            time, once the store node holds it as durable.
            """
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("t"), .long], help: "The topic name (no wildcards), e.g. cmd/device-7.")
    var topic: String

    @Option(name: [.customShort("p"), .customLong("body")], help: "The payload, as UTF-8 text.")
    var body: String

    @Option(name: [.customShort("q"), .long], help: "The QoS MQTT subscribers get it with: 0, 1 or 2.")
    var qos = 1

    @Flag(help: "Keep it as the topic's retained message (an empty body deletes the retained message).")
    var retain = false

    func validate() throws {
        guard (0...2).contains(qos) else { throw ValidationError("-q must be 0, 1 or 2") }
    }

    func run() async throws {
        // Checked before connecting: a bad topic fails at once, whatever the state of the cluster.
        do {
            _ = try TopicName(topic)
        } catch {
            throw AdminFailure("\(LMQClientError.invalidTopic(topic, reason: "\(error)"))")
        }
        let producer: LMQProducer
        do {
            producer = try await LMQProducer.start(try nameServers.clientConfiguration(), logger: .mqadmin)
        } catch {
            throw AdminFailure("sendMessage: \(error)")
        }
        let receipt: LMQSendReceipt
        do {
            receipt = try await producer.send(topic: topic, payload: body, qos: MQTTQoS(rawValue: UInt8(qos))!, retain: retain)
        } catch {
            await producer.shutdown()
            throw AdminFailure("sendMessage to \(topic) failed: \(error)")
        }
        await producer.shutdown()
        let queues = receipt.queueOffsets.map { "\($0.queue):\($0.offset)" }.joined(separator: ",")
        print("SEND_OK topic=\(receipt.topic) queues=\(queues) storeTime=\(formatStoreTime(receipt.storeTimestampMillis))")
    }
}

// MARK: Shared by sendMessage and consumeMessage

extension NameServerOptions {
    /// The LMQClient configuration of `-n`: the store node is the one the name servers list; `--timeout-ms`
    /// bounds the wait for it (at least a second).
    func clientConfiguration() throws -> LMQClientConfiguration {
        LMQClientConfiguration(
            nameServerAddresses: try addresses.map(\.description),
            storeNodeWaitSeconds: max(1, (timeoutMilliseconds + 999) / 1_000)
        )
    }
}

extension Logger {
    /// Warnings and errors of the client library, on standard error: standard output is the command's.
    static var mqadmin: Logger {
        var logger = Logger(label: "mqadmin") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }
}

/// `2025-01-31T09:15:02.347Z`: when the store node stored a message, in UTC.
func formatStoreTime(_ milliseconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1_000))
}
