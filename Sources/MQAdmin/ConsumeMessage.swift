import ArgumentParser
import Dispatch
import Foundation
import LMQClient

#if canImport(Glibc)
import Glibc
#endif

struct ConsumeMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumeMessage",
        abstract: "Print the messages of a topic or topic filter as a server consumer (LMQClient) gets them.",
        discussion: """
            -t is an MQTT topic name or filter: -t 'sensors/#' consumes everything published under the first topic \
            sensors (the topic sensors itself included), -t 'sensors/+/t' one level, -t sensors/1/t that topic only. \
            Shared filters ($share/...) are for MQTT clients: use a consumer group instead.

            With -g the command is a member of that consumer group (clustering: the members share the messages; \
            broadcasting: each member gets all of them); a group with a committed offset goes on from there, a new \
            one starts at --from. Without -g nothing is registered or committed: the queue is read from --from on \
            (a wildcard filter's queue then holds only what reached it for the MQTT sessions and groups that \
            subscribe to that filter).

            One line per message on standard output: topic, queue offset, QoS, store time, body (UTF-8). Each \
            message is acknowledged once printed. Stops after -c messages, after --timeout seconds without one, or \
            on Ctrl-C / SIGTERM (exit status 0 each time); what was fetched and not printed goes back to the group.
            """
    )

    enum Position: String, ExpressibleByArgument, CaseIterable {
        case earliest, latest
    }

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case clustering, broadcasting
    }

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("t"), .long], help: "A topic name or filter; 'FIRST/#' for everything under a first topic.")
    var topic: String

    @Option(name: [.customShort("g"), .long], help: "Consume as a member of this consumer group (default: no group, commit nothing).")
    var group: String?

    @Option(help: "Where a group without a committed offset (or a read without -g) starts.")
    var from: Position = .latest

    @Option(name: [.customShort("c"), .long], help: "Stop after this many messages (default: run until stopped).")
    var count: Int?

    @Option(help: "How the group's members share messages (needs -g; default clustering).")
    var mode: Mode?

    @Option(help: "Broadcasting: this member's name, which keeps its committed offset (default: default).")
    var member: String?

    @Option(
        name: .customLong("timeout"),
        help: ArgumentHelp("Stop after this many seconds without a message (default: never).", valueName: "seconds")
    )
    var timeoutSeconds: Int?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("-c must be at least 1") }
        if let timeoutSeconds, timeoutSeconds < 1 { throw ValidationError("--timeout must be at least 1 second") }
        if group == nil, mode != nil { throw ValidationError("--mode needs -g GROUP") }
        if member != nil, mode != .broadcasting { throw ValidationError("--member is for --mode broadcasting") }
    }

    /// What the consume loop waits for, in the order it happened.
    private enum Event: Sendable {
        case message(LMQConsumedMessage)
        /// No message for `--timeout` seconds since the timer of this generation started.
        case idle(generation: Int)
        case signal(Int32)
    }

    func run() async throws {
        let options = LMQConsumer.Options(
            mode: group == nil ? .readOnly : mode == .broadcasting ? .broadcasting : .clustering,
            startPosition: from == .earliest ? .earliest : .latest,
            memberName: member ?? "default",
            // No more taken from the group than will be printed: the rest stays with the other members.
            maxOutstanding: min(count ?? 64, 64)
        )
        let consumer: LMQConsumer
        do {
            consumer = try await LMQConsumer.start(
                try nameServers.clientConfiguration(), group: group ?? "mqadmin", subscription: .filter(topic), options: options,
                logger: .mqadmin
            )
        } catch {
            throw AdminFailure("consumeMessage: \(error)")
        }
        // Messages, the idle timer and signals arrive on one stream, so a message is either printed and
        // acknowledged, or left to go back to the group on shutdown: never printed and given back.
        let (events, eventSink) = AsyncStream.makeStream(of: Event.self)
        let forwarder = Task {
            for await message in consumer.messages { eventSink.yield(.message(message)) }
        }
        let signalNumbers = [SIGINT, SIGTERM]
        let signalSources = signalNumbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { eventSink.yield(.signal(number)) }
            source.resume()
            return source
        }

        let role = group.map { group in
            let mode = options.mode == .broadcasting ? "broadcasting, member \(options.memberName)" : "clustering"
            return "as group \(group) (\(mode); a new group starts at \(from.rawValue))"
        } ?? "without a group, starting at \(from.rawValue)"
        // Tests and scripts wait for this line: from here on, what is published reaches this consumer, and
        // Ctrl-C / SIGTERM stop it cleanly.
        writeStandardError("consuming \(consumer.filter) from \(consumer.queue) \(role); Ctrl-C to stop")

        var consumed = 0
        var generation = 0
        var idleTimer = startIdleTimer(generation: generation, sink: eventSink)
        var reason = "stopped"
        loop: for await event in events {
            switch event {
            case .message(let message):
                idleTimer?.cancel()
                writeStandardOutput(
                    "topic=\(message.topic) queueOffset=\(message.queueOffset) qos=\(message.qos.rawValue) "
                        + "storeTime=\(formatStoreTime(message.storeTimestampMillis)) body=\(message.payloadString)"
                )
                consumer.acknowledge(message)
                consumed += 1
                if let count, consumed >= count {
                    reason = "count reached"
                    break loop
                }
                generation += 1
                idleTimer = startIdleTimer(generation: generation, sink: eventSink)
            case .idle(let timerGeneration):
                guard timerGeneration == generation else { continue }
                reason = "no message for \(timeoutSeconds ?? 0) s"
                break loop
            case .signal(let number):
                reason = number == SIGINT ? "interrupted" : "terminated"
                break loop
            }
        }
        idleTimer?.cancel()
        // A second signal while the consumer shuts down (a store node that does not answer) ends it at once.
        for (number, source) in zip(signalNumbers, signalSources) { source.setEventHandler { Foundation.exit(128 + number) } }
        await consumer.shutdown()
        await forwarder.value
        eventSink.finish()
        for source in signalSources { source.cancel() }
        writeStandardError("consumed \(consumed) message\(consumed == 1 ? "" : "s") (\(reason))")
    }

    private func startIdleTimer(generation: Int, sink: AsyncStream<Event>.Continuation) -> Task<Void, Never>? {
        guard let timeoutSeconds else { return nil }
        return Task {
            guard (try? await Task.sleep(for: .seconds(timeoutSeconds))) != nil else { return }
            sink.yield(.idle(generation: generation))
        }
    }

    /// Written at once (not through a buffer): whoever reads a pipe sees each message as it is consumed.
    private func writeStandardOutput(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private func writeStandardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
