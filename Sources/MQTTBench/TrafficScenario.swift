import ArgumentParser
import Foundation
import MQTTCore

/// The `pub`, `sub` and `pubsub` runs: connect subscribers, then publishers, publish for the warm-up
/// and the measured duration, wait for deliveries to drain, and summarize.
struct TrafficScenario {
    var name: String
    var connection: ConnectionOptions
    var traffic: TrafficOptions
    var filters: FilterOptions?
    var publisherCount: Int
    var subscriberCount: Int
    /// `sub` alone: stop once this many messages arrived (0: at the end of the duration).
    var receiveLimit: UInt64 = 0

    func run() async throws -> BenchSummary {
        let runner = try connection.makeRunner()
        let reporter = ProgressReporter(runner: runner, scenario: name, enabled: !connection.quiet).start()
        let prefix = connection.prefix
        let rssBefore = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        let connectRate = connection.connectRate > 0 ? connection.connectRate : nil

        var gate: DeliveryGate?
        if traffic.maxAheadDeliveries > 0, traffic.rate == 0, publisherCount > 0, subscriberCount > 0, let filters {
            var topics: [(String, UInt64)] = []
            for index in 0..<publisherCount { topics.append((try traffic.topicName(for: index), 1)) }
            let matches = try Self.expectedDeliveries(sent: topics, subscriberCount: subscriberCount, filters: filters)
            gate = DeliveryGate(windowDeliveries: traffic.maxAheadDeliveries, fanOut: Double(matches) / Double(publisherCount))
        }
        // Publisher i on pub-ports[i mod n], subscriber j on sub-ports[j mod n] (a cluster's gateways).
        let publisherPorts = try connection.publisherPorts()
        let subscriberPorts = try connection.subscriberPorts()
        var subscriberSpecs: [ClientSpec] = []
        for index in 0..<subscriberCount {
            subscriberSpecs.append(ClientSpec(
                clientIdentifier: "\(prefix)-sub-\(index)",
                sourceAddress: try connection.sourceAddress(for: index),
                port: subscriberPorts[index % subscriberPorts.count],
                publish: nil,
                subscribe: SubscribeSpec(topicFilters: try filters?.filters(for: index) ?? [], qos: traffic.mqttQoS),
                deliveryGate: gate
            ))
        }
        var publisherSpecs: [ClientSpec] = []
        for index in 0..<publisherCount {
            publisherSpecs.append(ClientSpec(
                clientIdentifier: "\(prefix)-pub-\(index)",
                sourceAddress: try connection.sourceAddress(for: subscriberCount + index),
                port: publisherPorts[index % publisherPorts.count],
                publish: try traffic.publishSpec(publisherIndex: index),
                subscribe: nil,
                deliveryGate: gate
            ))
        }

        // Subscribers first, so that they are listening before the first message goes out.
        let subscribersOpened = await runner.open(subscriberSpecs, firstIndex: 0, ratePerSecond: connectRate, maxPending: connection.maxPending)
        let publishersOpened = await runner.open(publisherSpecs, firstIndex: subscriberCount, ratePerSecond: connectRate, maxPending: connection.maxPending)
        let connectSnapshot = await runner.snapshot()
        let subscribers = subscribersOpened.clients
        let publishers = publishersOpened.clients

        // Publish: warm-up, then the measured window.
        await runner.forEach(publishers) { $0.startPublishing() }
        let warmupEndNanos = monotonicNanoseconds() + UInt64(traffic.warmup * 1e9)
        while monotonicNanoseconds() < warmupEndNanos {
            try? await Task.sleep(nanoseconds: min(50_000_000, warmupEndNanos - min(warmupEndNanos, monotonicNanoseconds())))
            gate?.forgiveStall()
        }
        await runner.resetLatency()
        let windowStart = await runner.snapshot()
        let windowStartNanos = monotonicNanoseconds()
        let windowEndNanos = windowStartNanos + UInt64(traffic.duration * 1e9)
        let publishLimit = traffic.messageLimit > 0 ? traffic.messageLimit * UInt64(publishers.count) : nil
        while monotonicNanoseconds() < windowEndNanos {
            try? await Task.sleep(nanoseconds: 50_000_000)
            gate?.forgiveStall()
            if publishLimit != nil || receiveLimit > 0 {
                let counters = await runner.snapshot().counters
                if let publishLimit, !publishers.isEmpty, counters.published >= publishLimit { break }
                if receiveLimit > 0, counters.received >= receiveLimit { break }
            }
        }
        await runner.forEach(publishers) { $0.stopPublishing() }
        gate?.releaseAll()
        let windowEnd = await runner.snapshot()
        let windowSeconds = max(Double(monotonicNanoseconds() - windowStartNanos) / 1e9, 1e-3)

        // Drain: wait for what is still under way, until every expected delivery has arrived or nothing
        // has arrived for half a second (QoS 0 messages the broker dropped never will), at most --drain s.
        var expected: UInt64?
        if !publishers.isEmpty, !subscribers.isEmpty, let filters {
            let sent = await runner.map(publishers) { handler in
                (handler.spec.publish?.topicName ?? "", handler.publishedCount)
            }
            expected = try Self.expectedDeliveries(sent: sent, subscriberCount: subscribers.count, filters: filters)
        }
        var final = windowEnd
        if !subscribers.isEmpty, !publishers.isEmpty {
            final = await Self.drain(seconds: traffic.drain, expected: expected, from: final) { await runner.snapshot() }
        }
        final = await runner.snapshot()
        let rssAfter = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        let missing = subscribers.isEmpty ? 0 : await runner.map(subscribers) { $0.missingCount }.reduce(0, +)
        reporter.cancel()
        await reporter.value
        await runner.closeAll(subscribers + publishers)
        await runner.shutdown()

        let window = windowEnd.counters - windowStart.counters
        let totals = final.counters
        var lost: UInt64?
        if let expected {
            lost = expected > totals.receivedUnique ? expected - totals.receivedUnique : 0
        } else if !subscribers.isEmpty {
            lost = missing
        }
        let opened = [subscribersOpened, publishersOpened]
        let connected = opened.reduce(0) { $0 + $1.clients.count }
        let connectSeconds = opened.reduce(0) { $0 + $1.elapsedSeconds }
        return BenchSummary(
            scenario: name,
            label: connection.label,
            broker: connection.brokerDescription(publishers: publisherCount > 0, subscribers: subscriberCount > 0),
            protocolVersion: try connection.protocolVersion().description,
            qos: Int(traffic.qos),
            payloadSizeBytes: traffic.payloadSizeBytes,
            publishers: publisherCount,
            subscribers: subscriberCount,
            ratePerPublisher: traffic.rate > 0 ? traffic.rate : nil,
            durationSeconds: windowSeconds,
            warmupSeconds: traffic.warmup,
            connect: BenchSummary.ConnectSummary(
                attempted: opened.reduce(0) { $0 + $1.attempted },
                connected: connected,
                failed: opened.reduce(0) { $0 + $1.failed },
                elapsedSeconds: connectSeconds,
                ratePerSecond: connectSeconds > 0 ? Double(connected) / connectSeconds : 0,
                latencyMillis: PercentileSummary(micros: connectSnapshot.connectLatencyMicros),
                failureReasons: opened.flatMap(\.failureReasons)
            ),
            published: publishers.isEmpty ? nil : totals.published,
            publishRatePerSecond: publishers.isEmpty ? nil : Double(window.published) / windowSeconds,
            acknowledged: publishers.isEmpty || traffic.qos == 0 ? nil : totals.acknowledged,
            received: subscribers.isEmpty ? nil : totals.received,
            receiveRatePerSecond: subscribers.isEmpty ? nil : Double(window.received) / windowSeconds,
            expected: expected,
            lost: lost,
            lossRatio: lost.map { lost in
                let base = expected ?? (totals.receivedUnique + lost)
                return base > 0 ? Double(lost) / Double(base) : 0
            },
            duplicates: subscribers.isEmpty ? nil : totals.duplicates,
            reordered: subscribers.isEmpty ? nil : totals.reordered,
            foreign: subscribers.isEmpty ? nil : totals.foreign,
            latencyMillis: subscribers.isEmpty ? nil : PercentileSummary(micros: final.latencyMicros),
            unexpectedCloses: totals.unexpectedCloses,
            brokerMemory: BenchSummary.BrokerMemory(pid: connection.brokerPID, before: rssBefore, after: rssAfter, connections: connected)
        )
    }

    /// Published messages times the subscribers whose filters match each publisher's topic (a
    /// subscriber with several matching filters counts once).
    /// Waits until `expected` distinct messages have arrived (with nil: until no more arrive), or
    /// nothing arrived for half a second, for at most `seconds`; returns the last snapshot.
    static func drain<Snapshot: CountedSnapshot>(
        seconds: Double, expected: UInt64?, from start: Snapshot, snapshot: () async -> Snapshot
    ) async -> Snapshot {
        guard seconds > 0 else { return start }
        var final = start
        let drainEndNanos = monotonicNanoseconds() + UInt64(seconds * 1e9)
        var lastReceived = final.counters.received
        var lastProgressNanos = monotonicNanoseconds()
        while monotonicNanoseconds() < drainEndNanos {
            if let expected, final.counters.receivedUnique >= expected { break }
            try? await Task.sleep(nanoseconds: 50_000_000)
            final = await snapshot()
            if final.counters.received != lastReceived {
                lastReceived = final.counters.received
                lastProgressNanos = monotonicNanoseconds()
            } else if monotonicNanoseconds() - lastProgressNanos > 500_000_000 {
                break
            }
        }
        return final
    }

    static func expectedDeliveries(sent: [(String, UInt64)], subscriberCount: Int, filters: FilterOptions) throws -> UInt64 {
        var subscriberFilters: [[TopicFilter]] = []
        for index in 0..<subscriberCount {
            subscriberFilters.append(try filters.filters(for: index).map { try TopicFilter($0) })
        }
        var fanOutByTopic: [String: UInt64] = [:]
        var total: UInt64 = 0
        for (topic, count) in sent {
            let fanOut: UInt64
            if let known = fanOutByTopic[topic] {
                fanOut = known
            } else {
                let name = try TopicName(topic)
                fanOut = UInt64(subscriberFilters.count { filters in filters.contains { $0.matches(name) } })
                fanOutByTopic[topic] = fanOut
            }
            total += count * fanOut
        }
        return total
    }
}

extension BenchSummary.BrokerMemory {
    init?(pid: Int32?, before: Int?, after: Int?, connections: Int) {
        guard let pid, let before, let after else { return nil }
        self.init(
            pid: pid,
            rssBeforeBytes: before,
            rssAfterBytes: after,
            bytesPerConnection: connections > 0 ? Double(after - before) / Double(connections) : nil
        )
    }
}
