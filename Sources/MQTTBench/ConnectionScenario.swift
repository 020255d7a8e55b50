import Foundation

/// The `conn` run: open N connections at a rate, hold them, report the connect rate, the failures, the
/// connections the broker dropped while they were held, and (with `--broker-pid`) its memory per
/// connection.
struct ConnectionScenario {
    var connection: ConnectionOptions
    var count: Int
    var holdSeconds: Double

    func run() async throws -> BenchSummary {
        let runner = try connection.makeRunner()
        let reporter = ProgressReporter(runner: runner, scenario: "conn", enabled: !connection.quiet).start()
        let rssBefore = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        var specs: [ClientSpec] = []
        specs.reserveCapacity(count)
        for index in 0..<count {
            specs.append(ClientSpec(
                clientIdentifier: "\(connection.prefix)-conn-\(index)",
                sourceAddress: try connection.sourceAddress(for: index),
                publish: nil,
                subscribe: nil
            ))
        }
        let opened = await runner.open(
            specs, firstIndex: 0,
            ratePerSecond: connection.connectRate > 0 ? connection.connectRate : nil,
            maxPending: connection.maxPending
        )
        let holdStartNanos = monotonicNanoseconds()
        if holdSeconds > 0 {
            try? await Task.sleep(nanoseconds: UInt64(holdSeconds * 1e9))
        }
        let heldSeconds = Double(monotonicNanoseconds() - holdStartNanos) / 1e9
        // Read after the hold: the broker has settled what each connection costs it by then.
        let rssAfter = connection.brokerPID.flatMap { ProcessResources.residentSetSizeBytes(pid: $0) }
        let snapshot = await runner.snapshot()
        reporter.cancel()
        await reporter.value
        await runner.closeAll(opened.clients)
        await runner.shutdown()

        let connected = opened.clients.count
        return BenchSummary(
            scenario: "conn",
            label: connection.label,
            broker: connection.brokerDescription,
            protocolVersion: try connection.protocolVersion().description,
            qos: nil,
            payloadSizeBytes: nil,
            publishers: 0,
            subscribers: 0,
            ratePerPublisher: nil,
            durationSeconds: heldSeconds,
            warmupSeconds: 0,
            connect: BenchSummary.ConnectSummary(opened, connected: connected, latencyMicros: snapshot.connectLatencyMicros),
            unexpectedCloses: snapshot.counters.unexpectedCloses,
            brokerMemory: BenchSummary.BrokerMemory(pid: connection.brokerPID, before: rssBefore, after: rssAfter, connections: connected)
        )
    }
}
