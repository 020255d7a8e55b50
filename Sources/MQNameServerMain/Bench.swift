import ArgumentParser
import Foundation
import Logging
import NameServer
import Remoting

extension MQNameServerCommand {
    /// KV writes and reads per second through the wire protocol: `mqnamesrv bench`.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure KV writes and reads per second through the remoting protocol.",
            discussion: """
                Without -n, starts a name server in this process on 127.0.0.1 with a temporary data folder \
                (durable writes: WAL, synchronous=FULL) and talks to it over loopback TCP, one connection \
                shared by every worker. With -n, measures an already running name server (its data is \
                written to namespace BENCH, which is deleted afterwards).
                """,
            shouldDisplay: false
        )

        @Option(name: .customShort("n"), help: "host:port of a running name server (default: start one in process).")
        var nameServer: String?

        @Option(help: "Number of putKV requests.")
        var writes: Int = 2_000

        @Option(help: "Number of getKV requests.")
        var reads: Int = 100_000

        @Option(help: "Requests in flight at once (workers sharing one connection).")
        var concurrency: Int = 32

        @Option(name: .customLong("value-size"), help: "Bytes per value.")
        var valueSize: Int = 64

        @Option(help: "Distinct keys written and read.")
        var keys: Int = 1_000

        func validate() throws {
            guard (1...10_000_000).contains(writes), (1...10_000_000).contains(reads) else {
                throw ValidationError("--writes and --reads must be 1...10000000")
            }
            guard (1...4_096).contains(concurrency) else { throw ValidationError("--concurrency must be 1...4096") }
            guard (0...65_536).contains(valueSize) else { throw ValidationError("--value-size must be 0...65536") }
            guard (1...100_000).contains(keys) else { throw ValidationError("--keys must be 1...100000") }
        }

        func run() async throws {
            var logger = Logger(label: "namesrv")
            logger.logLevel = .warning
            var server: NameServer?
            var dataDirectory: String?
            let address: RemotingAddress
            if let nameServer {
                guard let parsed = RemotingAddress(parsing: nameServer) else { throw ValidationError("-n \(nameServer) is not host:port") }
                address = parsed
            } else {
                let directory = NSTemporaryDirectory() + "mqnamesrv-bench-\(ProcessInfo.processInfo.processIdentifier)"
                dataDirectory = directory
                let local = NameServer(
                    configuration: NameServerConfiguration(listenAddress: "127.0.0.1", listenPort: 0, dataDir: directory, logLevel: .warning),
                    logger: logger
                )
                try await local.start()
                server = local
                address = RemotingAddress(host: "127.0.0.1", port: local.port!)
            }
            let remoting = RemotingClient(configuration: .init(requestTimeout: .seconds(30)), logger: logger)
            let client = RemotingNameServerClient(address: address, remotingClient: remoting)
            let value = String(repeating: "v", count: valueSize)
            let keys = self.keys

            print("name server \(address)\(server == nil ? "" : " (in process, temporary data folder)"), concurrency \(concurrency), \(valueSize)-byte values, \(keys) keys")
            let writeResult = try await measure(count: writes) { index in
                try await client.putKV(namespace: "BENCH", key: "key-\(index % keys)", value: value)
            }
            print(writeResult.report(name: "putKV"))
            let readResult = try await measure(count: reads) { index in
                guard try await client.getKV(namespace: "BENCH", key: "key-\(index % min(keys, writes))") != nil else {
                    throw ValidationError("key-\(index % keys) missing after the writes")
                }
            }
            print(readResult.report(name: "getKV"))

            if server == nil {
                for index in 0..<min(keys, writes) {
                    try await client.deleteKV(namespace: "BENCH", key: "key-\(index)")
                }
            }
            await remoting.shutdown()
            await server?.shutdown()
            if let dataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
        }

        /// Runs `operation(0..<count)` on `concurrency` workers and records each call's latency.
        private func measure(count: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async throws -> Measurement {
            let clock = ContinuousClock()
            let workers = min(concurrency, count)
            let start = clock.now
            let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        var latencies: [Duration] = []
                        latencies.reserveCapacity(count / workers + 1)
                        var index = worker
                        while index < count {
                            let began = clock.now
                            try await operation(index)
                            latencies.append(clock.now - began)
                            index += workers
                        }
                        return latencies
                    }
                }
                var all: [Duration] = []
                for try await part in group { all += part }
                return all
            }
            return Measurement(elapsed: clock.now - start, latencies: latencies.sorted())
        }
    }

    struct Measurement {
        var elapsed: Duration
        /// Sorted.
        var latencies: [Duration]

        func report(name: String) -> String {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(latencies.count) / seconds
            func percentile(_ fraction: Double) -> String {
                let duration = latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
                let microseconds = Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
                return microseconds >= 1_000 ? String(format: "%.2f ms", microseconds / 1_000) : String(format: "%.0f µs", microseconds)
            }
            return String(
                format: "%@: %d requests in %.2f s = %.0f/s; latency p50 %@, p99 %@, max %@",
                name, latencies.count, seconds, rate, percentile(0.5), percentile(0.99), percentile(1.0)
            )
        }
    }
}
