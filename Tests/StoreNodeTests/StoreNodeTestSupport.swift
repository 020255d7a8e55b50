import Foundation
import LMQStore
import Logging
import NIOCore
import Remoting
import StoreNode

/// A fresh folder under the system's temporary directory, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init(_ name: String = "storenode") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

extension BrokerConfiguration {
    /// Loopback, a free port (or `port`), small segments, quiet logs.
    static func testing(storePath: String, port: Int = 0, flushDiskType: FlushDiskType = .asyncFlush, nameServers: [RemotingAddress] = []) -> Self {
        var store = LMQStore.Configuration(storePathRootDir: storePath, flushDiskType: flushDiskType, mappedFileSizeCommitLog: 8 * 1024 * 1024)
        store.indexFileSizeBytes = 1024 * 1024
        store.prefaultCommitLog = false
        return BrokerConfiguration(
            listenAddress: "127.0.0.1", listenPort: port, nameServerAddresses: nameServers, store: store, logLevel: .error
        )
    }
}

/// A quiet logger for the tests.
let testLogger: Logger = {
    var logger = Logger(label: "storenode.test")
    logger.logLevel = .error
    return logger
}()

/// A store node and a client of it, in this process.
struct StoreNodeFixture {
    let folder: TemporaryFolder
    let server: StoreNodeServer
    let client: StoreNodeClient
    let port: Int

    static func start(flushDiskType: FlushDiskType = .asyncFlush) async throws -> StoreNodeFixture {
        let folder = TemporaryFolder()
        let server = StoreNodeServer(configuration: .testing(storePath: folder.path, flushDiskType: flushDiskType), logger: testLogger)
        let port = try await server.start()
        let client = StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: port), logger: testLogger)
        return StoreNodeFixture(folder: folder, server: server, client: client, port: port)
    }

    func stop() async {
        try? await client.close()
        await server.shutdown()
        folder.remove()
    }
}

/// Collects what an arrival handler hears, for tests to wait on.
final class ArrivalRecorder: Sendable {
    private let box = LockedBox<[QueueOffset]>([])

    var handler: @Sendable ([QueueOffset]) -> Void {
        { [box] offsets in box.mutate { $0.append(contentsOf: offsets) } }
    }

    var heard: [QueueOffset] { box.value }

    /// Waits (bounded) until `condition` holds for what was heard.
    func wait(timeout: Duration = .seconds(10), until condition: ([QueueOffset]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(heard) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(heard)
    }
}

/// A lock-protected value .
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value { lock.withLock { stored } }

    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}

/// A loopback port that refuses connections for as long as this value lives: a TCP socket bound to it
/// but not listening, so no other test can take the port meanwhile.
final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}

/// A free loopback port below the kernel's ephemeral range, for tests that restart a server on the same
/// port: a port from the ephemeral range, once freed, is soon taken as the local port of some other
/// test's outgoing connection, and the restarted server's bind fails.
func freePortBelowEphemeralRange() throws -> Int {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
        .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
    let ephemeralStart = range?.first ?? 32_768
    let candidates = 20_000..<max(20_001, ephemeralStart)
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<100 {
        let port = Int.random(in: candidates, using: &generator)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { continue }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if bound { return port }
    }
    throw POSIXError(.EADDRINUSE)
}
