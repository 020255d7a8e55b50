import ArgumentParser
import Foundation
import LMQClient
import Logging
import MQTTCore
import NIOCore

/// `lmq-pub`: server producers (``LMQProducer``, no MQTT) send to topics; MQTT subscribers receive.
///
/// Each producer runs `--inflight` send loops at once over its one connection to the store node; a loop
/// sends, waits until the store node says the message is durable, and sends the next. Each loop stamps
/// its own publisher id and sequence (`producer × inflight + loop`), so a subscriber sees every id's
/// messages in order unless the store reorders them, and loss and duplicates are counted as for MQTT
/// publishers. At a fixed rate the producer's schedule is shared by its loops.
struct LMQProducerScenario {
    var connection: ConnectionOptions
    var traffic: TrafficOptions
    var filters: FilterOptions
    var lmq: LMQOptions
    var producerCount: Int
    var subscriberCount: Int

    func run() async throws -> LMQBenchSummary {
        let runner = try connection.makeRunner()
        let prefix = connection.prefix
        let rssBefore = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        let connectRate = connection.connectRate > 0 ? connection.connectRate : nil
        let logger = lmq.logger(label: "mqtt-bench.lmq-pub")

        var topics: [String] = []
        for index in 0..<producerCount { topics.append(try traffic.topicName(for: index)) }
        var gate: DeliveryGate?
        if traffic.maxAheadDeliveries > 0, traffic.rate == 0 {
            let matches = try TrafficScenario.expectedDeliveries(sent: topics.map { ($0, 1) }, subscriberCount: subscriberCount, filters: filters)
            gate = DeliveryGate(windowDeliveries: traffic.maxAheadDeliveries, fanOut: Double(matches) / Double(producerCount))
        }
        let subscriberPorts = try connection.subscriberPorts()
        var subscriberSpecs: [ClientSpec] = []
        for index in 0..<subscriberCount {
            subscriberSpecs.append(ClientSpec(
                clientIdentifier: "\(prefix)-sub-\(index)",
                sourceAddress: try connection.sourceAddress(for: index),
                port: subscriberPorts[index % subscriberPorts.count],
                publish: nil,
                subscribe: SubscribeSpec(topicFilters: try filters.filters(for: index), qos: traffic.mqttQoS),
                deliveryGate: gate
            ))
        }

        // Subscribers first, so that they are listening before the first message goes out.
        let subscribersOpened = await runner.open(subscriberSpecs, firstIndex: 0, ratePerSecond: connectRate, maxPending: connection.maxPending)
        let connectSnapshot = await runner.snapshot()
        let subscribers = subscribersOpened.clients

        let producersStartedNanos = monotonicNanoseconds()
        var producers: [LMQProducer] = []
        do {
            for _ in 0..<producerCount {
                producers.append(try await LMQProducer.start(lmq.clientConfiguration, logger: logger))
            }
        } catch {
            for producer in producers { await producer.shutdown() }
            await runner.closeAll(subscribers)
            await runner.shutdown()
            throw error
        }
        let startSeconds = Double(monotonicNanoseconds() - producersStartedNanos) / 1e9
        let stats = producers.map { _ in ServerSideStats() }
        let control = SendControl(producerCount: producerCount, messageLimit: traffic.messageLimit > 0 ? traffic.messageLimit : nil)
        // At a fixed rate, one schedule per producer, shared by its send loops.
        let permits: [SendPermits]? = traffic.rate > 0 ? producers.map { _ in SendPermits() } : nil
        let reporter = progressReporter(runner: runner, stats: stats)

        // Publish: warm-up, then the measured window.
        var loops: [Task<Void, Never>] = []
        var pacers: [Task<Void, Never>] = []
        if let permits {
            let startNanos = monotonicNanoseconds()
            let rate = traffic.rate
            pacers = permits.map { schedule in Task { await schedule.pace(ratePerSecond: rate, startNanos: startNanos) } }
        }
        for (index, producer) in producers.enumerated() {
            for loop in 0..<traffic.inflight {
                let sender = Sender(
                    producer: producer, producerIndex: index, publisherID: UInt32(index * traffic.inflight + loop),
                    topic: topics[index], qos: traffic.mqttQoS, retain: traffic.retain, payloadSizeBytes: traffic.payloadSizeBytes,
                    stats: stats[index], control: control, permits: permits?[index], gate: gate, logger: logger
                )
                loops.append(Task { await sender.run() })
            }
        }
        let loopCount = loops.count
        let warmupEndNanos = monotonicNanoseconds() + UInt64(traffic.warmup * 1e9)
        while monotonicNanoseconds() < warmupEndNanos, control.finishedLoops < loopCount {
            try? await Task.sleep(nanoseconds: min(50_000_000, warmupEndNanos - min(warmupEndNanos, monotonicNanoseconds())))
            gate?.forgiveStall()
        }
        await runner.resetLatency()
        for part in stats { part.resetLatency() }
        let windowStart = ServerSideStats.merged(stats)
        let receivedAtWindowStart = await runner.snapshot().counters.received
        let windowStartNanos = monotonicNanoseconds()
        let windowEndNanos = windowStartNanos + UInt64(traffic.duration * 1e9)
        while monotonicNanoseconds() < windowEndNanos, control.finishedLoops < loopCount {
            try? await Task.sleep(nanoseconds: 50_000_000)
            gate?.forgiveStall()
        }
        control.stop()
        for schedule in permits ?? [] { schedule.close() }
        let windowEnd = ServerSideStats.merged(stats)
        let receivedAtWindowEnd = await runner.snapshot().counters.received
        let windowSeconds = max(Double(monotonicNanoseconds() - windowStartNanos) / 1e9, 1e-3)
        // Sends under way finish (a parked loop is woken to see the stop); bounded by the append timeout.
        let loopsDeadlineNanos = monotonicNanoseconds() + 35_000_000_000
        while control.finishedLoops < loopCount, monotonicNanoseconds() < loopsDeadlineNanos {
            gate?.releaseAll()
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        if control.finishedLoops < loopCount { logger.warning("\(loopCount - control.finishedLoops) sends did not return in time") }
        let sent = ServerSideStats.merged(stats)

        // Drain, as TrafficScenario does: until everything expected arrived, or nothing arrived for half
        // a second, at most --drain seconds.
        var acknowledgedByTopic: [(String, UInt64)] = []
        for (index, part) in stats.enumerated() { acknowledgedByTopic.append((topics[index], part.snapshot().counters.acknowledged)) }
        let expected = try TrafficScenario.expectedDeliveries(sent: acknowledgedByTopic, subscriberCount: subscribers.count, filters: filters)
        var final = await runner.snapshot()
        if !subscribers.isEmpty {
            final = await TrafficScenario.drain(seconds: traffic.drain, expected: expected, from: final) { await runner.snapshot() }
        }
        final = await runner.snapshot()
        let rssAfter = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        reporter.cancel()
        await reporter.value
        for loop in loops { loop.cancel() }
        for pacer in pacers { await pacer.value }
        for producer in producers { await producer.shutdown() }
        await runner.closeAll(subscribers)
        await runner.shutdown()

        let window = windowEnd.counters - windowStart.counters
        let totals = final.counters
        let lost = expected > totals.receivedUnique ? expected - totals.receivedUnique : 0
        let connected = subscribersOpened.clients.count
        let base = BenchSummary(
            scenario: "lmq-pub",
            label: connection.label,
            broker: connection.brokerDescription(publishers: false, subscribers: true) + " (producers via name server \(lmq.nameServerDescription))",
            protocolVersion: try connection.protocolVersion().description,
            qos: Int(traffic.qos),
            payloadSizeBytes: traffic.payloadSizeBytes,
            publishers: producerCount,
            subscribers: subscriberCount,
            ratePerPublisher: traffic.rate > 0 ? traffic.rate : nil,
            durationSeconds: windowSeconds,
            warmupSeconds: traffic.warmup,
            connect: BenchSummary.ConnectSummary(subscribersOpened, connected: connected, latencyMicros: connectSnapshot.connectLatencyMicros),
            published: sent.counters.published,
            publishRatePerSecond: Double(window.published) / windowSeconds,
            acknowledged: sent.counters.acknowledged,
            received: totals.received,
            receiveRatePerSecond: Double(receivedAtWindowEnd - receivedAtWindowStart) / windowSeconds,
            expected: expected,
            lost: lost,
            lossRatio: expected > 0 ? Double(lost) / Double(expected) : 0,
            duplicates: totals.duplicates,
            reordered: totals.reordered,
            foreign: totals.foreign,
            latencyMillis: PercentileSummary(micros: final.latencyMicros),
            unexpectedCloses: totals.unexpectedCloses,
            brokerMemory: BenchSummary.BrokerMemory(pid: connection.brokerPID, before: rssBefore, after: rssAfter, connections: connected)
        )
        return LMQBenchSummary(base: base, server: LMQBenchSummary.ServerSide(
            direction: "lmq-pub",
            nameServers: lmq.nameServerDescription,
            clients: producerCount,
            startSeconds: startSeconds,
            window: traffic.inflight,
            group: nil,
            subscription: nil,
            sendFailures: sent.sendFailures,
            sendLatencyMillis: PercentileSummary(micros: sent.latencyMicros)
        ))
    }

    /// One line a second on standard error: sends and their acknowledgements, receipts and their latency.
    private func progressReporter(runner: BenchRunner, stats: [ServerSideStats]) -> Task<Void, Never> {
        let enabled = !connection.quiet
        return Task {
            guard enabled else { return }
            let startedNanos = monotonicNanoseconds()
            var previousSent = ServerSideStats.merged(stats, interval: true).counters
            var previousReceived = await runner.intervalSnapshot().counters
            var previousNanos = monotonicNanoseconds()
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                if Task.isCancelled { break }
                let sent = ServerSideStats.merged(stats, interval: true)
                let received = await runner.intervalSnapshot()
                let nowNanos = monotonicNanoseconds()
                let seconds = max(Double(nowNanos - previousNanos) / 1e9, 1e-3)
                var line = String(format: "lmq-pub %4.0fs", Double(nowNanos - startedNanos) / 1e9)
                line += "  sub \(Format.count(received.counters.connected))"
                line += "  send \(Format.count(Double(sent.counters.published - previousSent.published) / seconds))/s"
                line += "  durable \(Format.count(Double(sent.counters.acknowledged - previousSent.acknowledged) / seconds))/s"
                if sent.latencyMicros.totalCount > 0 {
                    line += " (p50 \(Format.millis(PercentileSummary(micros: sent.latencyMicros).p50)) ms)"
                }
                line += "  recv \(Format.count(Double(received.counters.received - previousReceived.received) / seconds))/s"
                if received.latencyMicros.totalCount > 0 {
                    let interval = PercentileSummary(micros: received.latencyMicros)
                    line += "  lat p50 \(Format.millis(interval.p50)) p99 \(Format.millis(interval.p99)) ms"
                }
                if sent.sendFailures > 0 { line += "  send failures \(Format.count(sent.sendFailures))" }
                if received.counters.duplicates > 0 { line += "  dup \(Format.count(received.counters.duplicates))" }
                if received.counters.reordered > 0 { line += "  reordered \(Format.count(received.counters.reordered))" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
                previousSent = sent.counters
                previousReceived = received.counters
                previousNanos = nowNanos
            }
        }
    }
}

/// One send loop of a producer: a message at a time, each sent once the previous one is durable.
private struct Sender: Sendable {
    let producer: LMQProducer
    let producerIndex: Int
    let publisherID: UInt32
    let topic: String
    let qos: MQTTQoS
    let retain: Bool
    let payloadSizeBytes: Int
    let stats: ServerSideStats
    let control: SendControl
    /// At a fixed rate: when each send is due.
    let permits: SendPermits?
    let gate: DeliveryGate?
    let logger: Logger

    func run() async {
        defer { control.loopFinished() }
        let allocator = ByteBufferAllocator()
        var sequence: UInt64 = 0
        while true {
            if let permits, !(await permits.acquire()) { break }
            guard control.take(producer: producerIndex) else { break }
            if let gate, !(await Self.allowance(gate, control: control)) { break }
            var payload = allocator.buffer(capacity: payloadSizeBytes)
            BenchPayload(sendTimeNanos: wallClockNanoseconds(), publisherID: publisherID, sequence: sequence)
                .write(into: &payload, payloadSizeBytes: payloadSizeBytes)
            sequence += 1
            stats.sendStarted()
            gate?.published(1)
            let startedNanos = monotonicNanoseconds()
            do {
                try await producer.send(topic: topic, payload: payload, qos: qos, retain: retain)
                stats.sendFinished(succeeded: true, micros: (monotonicNanoseconds() - startedNanos) / 1000)
            } catch {
                stats.sendFinished(succeeded: false, micros: 0)
                logger.warning("send to \(topic) failed: \(error)")
                // A node that is gone fails every send at once: do not spin.
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
        }
    }

    /// Waits for room in the delivery window (`--max-ahead`); false once publishing stopped.
    private static func allowance(_ gate: DeliveryGate, control: SendControl) async -> Bool {
        while !control.isStopped {
            let granted = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                // The resume closure runs only when no allowance was given now; exactly one resume either way.
                if gate.allowance(wanted: 1, resume: { continuation.resume(returning: false) }) > 0 {
                    continuation.resume(returning: true)
                }
            }
            if granted { return true }
        }
        return false
    }
}
