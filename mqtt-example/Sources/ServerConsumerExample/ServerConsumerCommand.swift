import ArgumentParser
import Foundation
import LMQClient

/// A server application consuming what devices publish, as a member of a consumer group: start two with
/// the same `--group` and they share the messages (clustering), or each gets all of them (broadcasting).
@main
struct ServerConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-example-server-consumer",
        abstract: "Consume what MQTT devices publish, as a member of a consumer group."
    )

    enum Mode: String, ExpressibleByArgument {
        case clustering, broadcasting
    }

    enum Position: String, ExpressibleByArgument {
        case earliest, latest
    }

    @Option(help: "Name servers, \"host:port;host:port\" (default: $NAMESRV_ADDR, else 127.0.0.1:9876).")
    var namesrv: String?

    @Option(name: .shortAndLong, help: "The consumer group.")
    var group = "backend"

    @Option(name: [.customShort("t"), .long], help: "Topic filter to consume; + and # are wildcards.")
    var topicFilter = "sensors/#"

    @Option(help: "Consume everything under this first topic instead of --topic-filter.")
    var firstTopic: String?

    @Option(help: "clustering (the members share the messages) or broadcasting (each member gets all).")
    var mode = Mode.clustering

    @Option(help: "Broadcasting: this member's name, which keeps its offset; give each member its own.")
    var member = "default"

    @Option(help: "Where a group without a committed offset starts: earliest or latest.")
    var from = Position.latest

    @Option(help: "Exit after this many messages (default: run until stopped).")
    var count: Int?

    @Option(help: "Time spent on each message before acknowledging it, in milliseconds.")
    var processMilliseconds = 0

    @Option(help: "At most this many messages taken from the group and not yet acknowledged (1...1024).")
    var maxOutstanding = 64

    func run() async throws {
        var configuration = LMQClientConfiguration()
        if let namesrv { configuration.nameServerAddresses = LMQClientConfiguration.parseAddresses(namesrv) }
        let subscription: LMQConsumer.Subscription = firstTopic.map { .firstTopic($0) } ?? .filter(topicFilter)
        let options = LMQConsumer.Options(
            mode: mode == .broadcasting ? .broadcasting : .clustering,
            startPosition: from == .earliest ? .earliest : .latest,
            memberName: member,
            maxOutstanding: maxOutstanding
        )
        // A group with a committed offset goes on from there; a new one starts at --from.
        let consumer = try await LMQConsumer.start(configuration, group: group, subscription: subscription, options: options)
        FileHandle.standardError.write(Data("consuming \(consumer.filter) as group \(group) (\(mode.rawValue)); Ctrl-C to stop\n".utf8))

        var received = 0
        for await message in consumer.messages {
            // The work. Killed before it acknowledges, this member's unacknowledged messages go to the
            // other members of the group (clustering): at least once.
            if processMilliseconds > 0 {
                try await Task.sleep(for: .milliseconds(processMilliseconds))
            }
            // Written at once, not buffered: a pipe or a log file sees each line as it is processed.
            FileHandle.standardOutput.write(Data("\(message.queueOffset) \(message.topic) \(message.payloadString)\n".utf8))
            consumer.acknowledge(message)
            received += 1
            if let count, received >= count { break }
        }

        // Hands back what was fetched and not acknowledged, and leaves the group.
        await consumer.shutdown()
    }
}
