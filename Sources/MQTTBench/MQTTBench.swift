import ArgumentParser

/// `mqtt-bench conn|pub|sub|pubsub|lmq-pub|lmq-sub`: load for an MQTT broker, in the spirit of emqtt-bench.
@main
struct MQTTBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-bench",
        abstract: "Load an MQTT broker and measure it: connections, throughput, latency, loss.",
        discussion: """
            Payloads carry a send time, a publisher id and a sequence number, so subscribers report \
            latency percentiles, loss, duplicates and reordering. A progress line goes to standard error \
            every second; the JSON summary goes to standard output (or --json FILE). See docs/mqtt-bench.md.
            """,
        subcommands: [Conn.self, Pub.self, Sub.self, PubSub.self, LMQPub.self, LMQSub.self]
    )
}

extension MQTTBench {
    struct Conn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open N connections at a rate, hold them, report the connect rate and failures."
        )

        @OptionGroup var connection: ConnectionOptions

        @Option(name: [.customShort("c"), .long], help: "Connections to open.")
        var count: Int = 1000

        @Option(help: "Seconds to hold the connections once all are open.")
        var hold: Double = 10

        func validate() throws {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            guard hold >= 0 else { throw ValidationError("--hold must not be negative") }
        }

        func run() async throws {
            let summary = try await ConnectionScenario(connection: connection, count: count, holdSeconds: hold).run()
            try connection.emit(summary)
        }
    }

    struct Pub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish from N clients.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var traffic: TrafficOptions

        @Option(name: [.customShort("c"), .long], help: "Publishing clients.")
        var clients: Int = 1

        func validate() throws {
            guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
        }

        func run() async throws {
            let scenario = TrafficScenario(
                name: "pub", connection: connection, traffic: traffic, filters: nil,
                publisherCount: clients, subscriberCount: 0
            )
            try connection.emit(try await scenario.run())
        }
    }

    struct Sub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Subscribe from N clients; measure what arrives (from mqtt-bench pub in another process)."
        )

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var filters: FilterOptions

        @Option(name: [.customShort("c"), .long], help: "Subscribing clients.")
        var clients: Int = 1

        @Option(name: [.customShort("q"), .long], help: "Maximum QoS of the subscriptions: 0, 1 or 2.")
        var qos: UInt8 = 0

        @Option(name: [.customShort("d"), .long], help: "Seconds to listen.")
        var duration: Double = 10

        @Option(name: .customLong("limit"), help: "Stop once this many messages arrived over all clients (0: at the end of --duration).")
        var messageLimit: UInt64 = 0

        func validate() throws {
            guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
            guard qos <= 2 else { throw ValidationError("--qos must be 0, 1 or 2") }
            guard duration > 0 else { throw ValidationError("--duration must be positive") }
        }

        func run() async throws {
            var traffic = try TrafficOptions.parse(["--qos", String(qos), "--duration", String(duration), "--warmup", "0", "--drain", "0"])
            traffic.payloadSizeBytes = BenchPayload.stampSizeBytes
            var scenario = TrafficScenario(
                name: "sub", connection: connection, traffic: traffic, filters: filters,
                publisherCount: 0, subscriberCount: clients
            )
            scenario.receiveLimit = messageLimit
            var summary = try await scenario.run()
            summary.payloadSizeBytes = nil
            try connection.emit(summary)
        }
    }

    struct PubSub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pubsub",
            abstract: "Publishers and subscribers in one process: throughput, latency, loss, duplicates, reordering."
        )

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var traffic: TrafficOptions
        @OptionGroup var filters: FilterOptions

        @Option(name: .long, help: "Publishing clients.")
        var publishers: Int = 1

        @Option(name: .long, help: "Subscribing clients.")
        var subscribers: Int = 1

        func validate() throws {
            guard publishers >= 1, subscribers >= 1 else { throw ValidationError("--publishers and --subscribers must be at least 1") }
        }

        func run() async throws {
            let scenario = TrafficScenario(
                name: "pubsub", connection: connection, traffic: traffic, filters: filters,
                publisherCount: publishers, subscriberCount: subscribers
            )
            try connection.emit(try await scenario.run())
        }
    }
}
