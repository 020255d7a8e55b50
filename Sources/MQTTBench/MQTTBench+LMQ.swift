import ArgumentParser
import Foundation
import LMQClient

/// `mqtt-bench lmq-pub` and `lmq-sub`: server applications (the `LMQClient` library) on one side of the
/// store, MQTT clients on the other (docs/server-messaging.md).
extension MQTTBench {
    struct LMQPub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lmq-pub",
            abstract: "Server producers (LMQProducer, no MQTT) → MQTT subscribers: throughput, send and delivery latency, loss.",
            discussion: """
                Each producer keeps --inflight sends under way at once on its connection to the store node \
                (at every QoS: a send returns when the store node says the message is durable). Producer i \
                sends to --topic with %i = i; subscriber j subscribes to --filter with %i = j. --rate is per \
                producer. The store is found through --namesrv, as a server application finds it.
                """
        )

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup(title: "Store") var lmq: LMQOptions
        @OptionGroup var traffic: TrafficOptions
        @OptionGroup var filters: FilterOptions

        @Option(name: .long, help: "Producers (each with its own connection to the store node).")
        var producers: Int = 1

        @Option(name: .long, help: "MQTT subscribers.")
        var subscribers: Int = 1

        func validate() throws {
            guard producers >= 1, subscribers >= 1 else { throw ValidationError("--producers and --subscribers must be at least 1") }
            guard producers * traffic.inflight <= 100_000 else { throw ValidationError("--producers × --inflight must be at most 100000 send loops") }
        }

        func run() async throws {
            let scenario = LMQProducerScenario(
                connection: connection, traffic: traffic, filters: filters, lmq: lmq,
                producerCount: producers, subscriberCount: subscribers
            )
            try await scenario.run().emit(json: connection.json)
        }
    }

    struct LMQSub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lmq-sub",
            abstract: "MQTT publishers → a server consumer group (LMQConsumer, clustering): throughput, latency, loss, duplicates.",
            discussion: """
                The members of the group share the messages under --filter and acknowledge each one. \
                Publisher i publishes to --topic with %i = i. The group (default bench-<pid>) starts at the \
                queue's end; its subscription is removed at the end of the run.
                """
        )

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup(title: "Store") var lmq: LMQOptions
        @OptionGroup var traffic: TrafficOptions

        @Option(name: .long, help: "MQTT publishers.")
        var publishers: Int = 1

        @Option(name: .long, help: "Members of the consumer group.")
        var consumers: Int = 1

        @Option(name: [.customShort("f"), .long], help: "The group's subscription: a topic filter (bench/# is everything under first topic bench).")
        var filter: String = "bench/#"

        @Option(name: [.customShort("g"), .long], help: "Consumer group (default: bench-<pid>).")
        var group: String?

        @Option(name: .customLong("max-outstanding"), help: "Messages a member holds unacknowledged at most (1-1024).")
        var maxOutstanding: Int = 64

        func validate() throws {
            guard publishers >= 1, consumers >= 1 else { throw ValidationError("--publishers and --consumers must be at least 1") }
            guard (1...1_024).contains(maxOutstanding) else { throw ValidationError("--max-outstanding must be 1-1024") }
            do {
                _ = try LMQConsumer.Subscription.filter(filter).topicFilter()
            } catch {
                throw ValidationError("--filter: \(error)")
            }
            if let group, group.isEmpty || group.contains("%") || group.contains("/") {
                throw ValidationError("--group must be non-empty, without '%' or '/'")
            }
        }

        func run() async throws {
            let scenario = LMQConsumerScenario(
                connection: connection, traffic: traffic, lmq: lmq, publisherCount: publishers, consumerCount: consumers,
                group: group ?? "bench-\(ProcessInfo.processInfo.processIdentifier)", filter: filter, maxOutstanding: maxOutstanding
            )
            try await scenario.run().emit(json: connection.json)
        }
    }
}
