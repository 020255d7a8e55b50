import ArgumentParser
import Foundation
import LMQClient
import Logging
import MQTTCore

/// `lmq-sub`: MQTT publishers publish; the members of a server consumer group (``LMQConsumer``,
/// clustering mode) share what arrives and acknowledge each message.
///
/// The members share one record of what arrived (``ServerSideStats``), so a message handed to two
/// members, or to one twice, is a duplicate, and expected minus distinct arrivals is the loss. A member
/// that gets a publisher's message after a later one of the same publisher counts it as reordered
/// (members work at once, so across members order is not kept, by design).
///
/// The group is `bench-<pid>` unless `--group` names one, and starts at the queue's end. Its wildcard
/// subscription is registered with the store node for dispatch, durably; the run removes it (and the
/// group's offset) at the end, or else every later message to the filter would still be dispatched to
/// the group's queue.
struct LMQConsumerScenario {
    var connection: ConnectionOptions
    var traffic: TrafficOptions
    var lmq: LMQOptions
    var publisherCount: Int
    var consumerCount: Int
    var group: String
    var filter: String
    var maxOutstanding: Int

    func run() async throws -> LMQBenchSummary {
        let runner = try connection.makeRunner()
        let prefix = connection.prefix
        let rssBefore = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        let connectRate = connection.connectRate > 0 ? connection.connectRate : nil
        let logger = lmq.logger(label: "mqtt-bench.lmq-sub")
        let topicFilter = try TopicFilter(filter)
        let subscription = LMQConsumer.Subscription.filter(filter)
        let configuration = lmq.clientConfiguration

        var publisherSpecs: [ClientSpec] = []
        var matchingTopics: [Bool] = []
        for index in 0..<publisherCount {
            matchingTopics.append(topicFilter.matches(try TopicName(try traffic.topicName(for: index))))
        }
        let gate: DeliveryGate? = traffic.maxAheadDeliveries > 0 && traffic.rate == 0
            ? DeliveryGate(windowDeliveries: traffic.maxAheadDeliveries, fanOut: Double(matchingTopics.count { $0 }) / Double(publisherCount))
            : nil
        let publisherPorts = try connection.publisherPorts()
        for index in 0..<publisherCount {
            publisherSpecs.append(ClientSpec(
                clientIdentifier: "\(prefix)-pub-\(index)",
                sourceAddress: try connection.sourceAddress(for: index),
                port: publisherPorts[index % publisherPorts.count],
                publish: try traffic.publishSpec(publisherIndex: index),
                subscribe: nil,
                deliveryGate: gate
            ))
        }

        // The group first, so that it reads from before the first message.
        let stats = ServerSideStats()
        let consumersStartedNanos = monotonicNanoseconds()
        var consumers: [LMQConsumer] = []
        do {
            for index in 0..<consumerCount {
                consumers.append(try await LMQConsumer.start(
                    configuration, group: group, subscription: subscription,
                    options: LMQConsumer.Options(mode: .clustering, startPosition: .latest, memberName: "member-\(index)", maxOutstanding: maxOutstanding),
                    logger: logger
                ))
            }
        } catch {
            for consumer in consumers { await consumer.shutdown() }
            try? await LMQConsumer.removeSubscription(configuration, group: group, subscription: subscription, logger: logger)
            await runner.shutdown()
            throw error
        }
        let startSeconds = Double(monotonicNanoseconds() - consumersStartedNanos) / 1e9
        let members = consumers.map { consumer in
            Task { await Self.consume(consumer, stats: stats, gate: gate) }
        }

        let publishersOpened = await runner.open(publisherSpecs, firstIndex: 0, ratePerSecond: connectRate, maxPending: connection.maxPending)
        let connectSnapshot = await runner.snapshot()
        let publishers = publishersOpened.clients
        let reporter = progressReporter(runner: runner, stats: stats)

        // Publish: warm-up, then the measured window.
        await runner.forEach(publishers) { $0.startPublishing() }
        let warmupEndNanos = monotonicNanoseconds() + UInt64(traffic.warmup * 1e9)
        while monotonicNanoseconds() < warmupEndNanos {
            try? await Task.sleep(nanoseconds: min(50_000_000, warmupEndNanos - min(warmupEndNanos, monotonicNanoseconds())))
            gate?.forgiveStall()
        }
        stats.resetLatency()
        let windowStart = await runner.snapshot()
        let receivedAtWindowStart = stats.snapshot().counters.received
        let windowStartNanos = monotonicNanoseconds()
        let windowEndNanos = windowStartNanos + UInt64(traffic.duration * 1e9)
        let publishLimit = traffic.messageLimit > 0 ? traffic.messageLimit * UInt64(publishers.count) : nil
        while monotonicNanoseconds() < windowEndNanos {
            try? await Task.sleep(nanoseconds: 50_000_000)
            gate?.forgiveStall()
            if let publishLimit, !publishers.isEmpty, await runner.snapshot().counters.published >= publishLimit { break }
        }
        await runner.forEach(publishers) { $0.stopPublishing() }
        gate?.releaseAll()
        let windowEnd = await runner.snapshot()
        let receivedAtWindowEnd = stats.snapshot().counters.received
        let windowSeconds = max(Double(monotonicNanoseconds() - windowStartNanos) / 1e9, 1e-3)

        // Drain: until every expected message arrived, or nothing arrived for half a second, at most
        // --drain seconds.
        let sent = await runner.map(publishers) { handler in (Int(handler.spec.publish?.publisherID ?? 0), handler.publishedCount) }
        let expected = sent.reduce(UInt64(0)) { total, entry in matchingTopics[entry.0] ? total + entry.1 : total }
        var final = stats.snapshot()
        final = await TrafficScenario.drain(seconds: traffic.drain, expected: expected, from: final) { stats.snapshot() }
        let publisherTotals = await runner.snapshot().counters
        let rssAfter = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        reporter.cancel()
        await reporter.value
        for consumer in consumers { await consumer.shutdown() }
        for member in members { await member.value }
        do {
            try await LMQConsumer.removeSubscription(configuration, group: group, subscription: subscription, logger: logger)
        } catch {
            logger.warning("removing the subscription of group \(group) failed: \(error)")
        }
        await runner.closeAll(publishers)
        await runner.shutdown()
        final = stats.snapshot()

        let window = windowEnd.counters - windowStart.counters
        let totals = final.counters
        let lost = expected > totals.receivedUnique ? expected - totals.receivedUnique : 0
        let connected = publishersOpened.clients.count
        let base = BenchSummary(
            scenario: "lmq-sub",
            label: connection.label,
            broker: connection.brokerDescription(publishers: true, subscribers: false) + " (consumers via name server \(lmq.nameServerDescription))",
            protocolVersion: try connection.protocolVersion().description,
            qos: Int(traffic.qos),
            payloadSizeBytes: traffic.payloadSizeBytes,
            publishers: publisherCount,
            subscribers: consumerCount,
            ratePerPublisher: traffic.rate > 0 ? traffic.rate : nil,
            durationSeconds: windowSeconds,
            warmupSeconds: traffic.warmup,
            connect: BenchSummary.ConnectSummary(publishersOpened, connected: connected, latencyMicros: connectSnapshot.connectLatencyMicros),
            published: publisherTotals.published,
            publishRatePerSecond: Double(window.published) / windowSeconds,
            acknowledged: traffic.qos == 0 ? nil : publisherTotals.acknowledged,
            received: totals.received,
            receiveRatePerSecond: Double(receivedAtWindowEnd - receivedAtWindowStart) / windowSeconds,
            expected: expected,
            lost: lost,
            lossRatio: expected > 0 ? Double(lost) / Double(expected) : 0,
            duplicates: totals.duplicates,
            reordered: totals.reordered,
            foreign: totals.foreign,
            latencyMillis: PercentileSummary(micros: final.latencyMicros),
            unexpectedCloses: publisherTotals.unexpectedCloses,
            brokerMemory: BenchSummary.BrokerMemory(pid: connection.brokerPID, before: rssBefore, after: rssAfter, connections: connected)
        )
        return LMQBenchSummary(base: base, server: LMQBenchSummary.ServerSide(
            direction: "lmq-sub",
            nameServers: lmq.nameServerDescription,
            clients: consumerCount,
            startSeconds: startSeconds,
            window: maxOutstanding,
            group: group,
            subscription: filter,
            sendFailures: nil,
            sendLatencyMillis: nil
        ))
    }

    /// One member: records and acknowledges each message as it comes, until the consumer shuts down.
    private static func consume(_ consumer: LMQConsumer, stats: ServerSideStats, gate: DeliveryGate?) async {
        // The highest sequence this member got from each publisher, for reordering.
        var highest: [UInt32: UInt64] = [:]
        for await message in consumer.messages {
            let receipt = stats.received(BenchPayload.read(from: message.payload), payloadBytes: message.payload.readableBytes, nowNanos: wallClockNanoseconds())
            switch receipt {
            case .first(let publisherID, let sequence):
                if let previous = highest[publisherID], sequence < previous {
                    stats.reordered()
                } else {
                    highest[publisherID] = sequence
                }
            case .duplicate, .foreign:
                break
            }
            consumer.acknowledge(message)
            gate?.delivered(1)
        }
    }

    /// One line a second on standard error: publishes and acknowledgements, receipts and their latency.
    private func progressReporter(runner: BenchRunner, stats: ServerSideStats) -> Task<Void, Never> {
        let enabled = !connection.quiet
        return Task {
            guard enabled else { return }
            let startedNanos = monotonicNanoseconds()
            var previousPublished = await runner.snapshot().counters
            var previousReceived = stats.takeInterval().counters
            var previousNanos = monotonicNanoseconds()
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                if Task.isCancelled { break }
                let published = await runner.snapshot().counters
                let received = stats.takeInterval()
                let nowNanos = monotonicNanoseconds()
                let seconds = max(Double(nowNanos - previousNanos) / 1e9, 1e-3)
                var line = String(format: "lmq-sub %4.0fs", Double(nowNanos - startedNanos) / 1e9)
                line += "  pub conn \(Format.count(published.connected))"
                line += "  pub \(Format.count(Double(published.published - previousPublished.published) / seconds))/s"
                if published.acknowledged > 0 {
                    line += "  ack \(Format.count(Double(published.acknowledged - previousPublished.acknowledged) / seconds))/s"
                }
                line += "  consumed \(Format.count(Double(received.counters.received - previousReceived.received) / seconds))/s"
                if received.latencyMicros.totalCount > 0 {
                    let interval = PercentileSummary(micros: received.latencyMicros)
                    line += "  lat p50 \(Format.millis(interval.p50)) p99 \(Format.millis(interval.p99)) ms"
                }
                if received.counters.duplicates > 0 { line += "  dup \(Format.count(received.counters.duplicates))" }
                if received.counters.reordered > 0 { line += "  reordered \(Format.count(received.counters.reordered))" }
                if published.unexpectedCloses > 0 { line += "  closed \(Format.count(published.unexpectedCloses))" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
                previousPublished = published
                previousReceived = received.counters
                previousNanos = nowNanos
            }
        }
    }
}
