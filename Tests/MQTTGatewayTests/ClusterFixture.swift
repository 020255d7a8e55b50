import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real cluster on loopback: one `mqnamesrv`, one `mqbroker` and gateways (`mqtt-node` with
/// `NAMESRV_ADDR`), each its own process with its own configuration folder. The store node keeps its
/// port across restarts, so a test can SIGKILL it and start it again.
final class ClusterFixture: @unchecked Sendable {
    static let nameServerPath = NodeProcess.productPath("mqnamesrv")
    static let brokerPath = NodeProcess.productPath("mqbroker")
    static var isAvailable: Bool { nameServerPath != nil && brokerPath != nil && NodeProcess.binaryPath != nil }

    let directory: String
    let nameServer: ServiceProcess
    let broker: ServiceProcess
    /// More store nodes (`start(extraBrokers:)`), named broker-b, broker-c, ...; the gateways' primary is `broker`.
    private(set) var extraBrokers: [ServiceProcess] = []
    private(set) var gateways: [NodeProcess] = []

    /// `host:port` of the name server.
    var nameServerAddress: String { "127.0.0.1:\(nameServer.port)" }

    private init(directory: String, nameServer: ServiceProcess, broker: ServiceProcess) {
        self.directory = directory
        self.nameServer = nameServer
        self.broker = broker
    }

    /// Starts the name server, the store node (with `broker` settings over the defaults) and `gatewayCount`
    /// gateways; returns once every gateway listens (and so has found the store node).
    static func start(gateways gatewayCount: Int, broker brokerSettings: [String: String] = [:], extraBrokers: Int = 0) async throws -> ClusterFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mqtt-cluster-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let nameServer = ServiceProcess(
            name: "mqnamesrv", executable: nameServerPath!, directory: directory + "/namesrv", confFile: "namesrv.conf",
            port: try freePortBelowEphemeralRange(), portKey: "listenPort",
            settings: ["listenAddress": "127.0.0.1", "dataDir": directory + "/namesrv/data", "nodeExpirySeconds": "6"],
            readyLine: "listening on"
        )
        try await nameServer.start()
        var settings = [
            "brokerListenAddress": "127.0.0.1", "namesrvAddr": "127.0.0.1:\(nameServer.port)", "storePathRootDir": directory + "/broker/store",
            "mappedFileSizeCommitLog": "\(16 * 1024 * 1024)",
            // Well under the name server's 6 s expiry, so no live node ever drops out of the registry.
            "heartbeatIntervalSeconds": "1",
        ]
        settings.merge(brokerSettings) { $1 }
        let broker = ServiceProcess(
            name: "mqbroker", executable: brokerPath!, directory: directory + "/broker", confFile: "broker.conf",
            port: try freePortBelowEphemeralRange(), portKey: "listenPort", settings: settings, readyLine: "store node listening"
        )
        let fixture = ClusterFixture(directory: directory, nameServer: nameServer, broker: broker)
        for index in 0..<extraBrokers {
            var extraSettings = settings
            let name = "broker-" + String(UnicodeScalar(UInt8(98 + index)))
            extraSettings["brokerName"] = name
            extraSettings["storePathRootDir"] = directory + "/\(name)/store"
            fixture.extraBrokers.append(ServiceProcess(
                name: "mqbroker", executable: brokerPath!, directory: directory + "/\(name)", confFile: "broker.conf",
                port: try freePortBelowEphemeralRange(), portKey: "listenPort", settings: extraSettings, readyLine: "store node listening"
            ))
        }
        do {
            try await broker.start()
            for extra in fixture.extraBrokers { try await extra.start() }
            for _ in 0..<gatewayCount { try await fixture.addGateway() }
        } catch {
            await fixture.shutdown()
            throw error
        }
        return fixture
    }

    /// Runs `body` with a cluster of `gateways` gateways (in a node slot); on failure records every
    /// process's log; always shuts the cluster down.
    static func with(
        gateways: Int, broker: [String: String] = [:], extraBrokers: Int = 0, _ body: @Sendable (ClusterFixture) async throws -> Void
    ) async throws {
        try await NodeSlots.shared.withSlot {
            let cluster = try await start(gateways: gateways, broker: broker, extraBrokers: extraBrokers)
            do {
                try await body(cluster)
            } catch {
                Issue.record("cluster logs:\n\(cluster.logs)")
                await cluster.shutdown()
                throw error
            }
            await cluster.shutdown()
        }
    }

    /// Starts one more gateway of the cluster.
    @discardableResult
    func addGateway() async throws -> NodeProcess {
        let gateway = try await NodeProcess.start(NodeProcess.Options(service: [
            "NAMESRV_ADDR": nameServerAddress, "heartbeatIntervalSeconds": "1", "storeNodeAddress": "127.0.0.1:\(broker.port)",
        ]))
        gateways.append(gateway)
        // In cluster mode for real: on the store node, and no name server of its own.
        let storeLine = "cluster mode: messages and sessions on store node 127.0.0.1:\(broker.port)"
        guard gateway.log.contains(storeLine), !gateway.log.contains("name server in process") else {
            throw NodeProcess.Failure("gateway not in cluster mode on the store node; log:\n\(gateway.logTail())")
        }
        return gateway
    }

    func shutdown() async {
        for gateway in gateways { await gateway.shutdown() }
        await broker.stop(signal: SIGKILL)
        for extra in extraBrokers { await extra.stop(signal: SIGKILL) }
        await nameServer.stop(signal: SIGKILL)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The logs of every process, for failure messages.
    var logs: String {
        var text = "--- mqnamesrv ---\n\(nameServer.logTail())\n--- mqbroker ---\n\(broker.logTail())"
        for extra in extraBrokers { text += "\n--- mqbroker \(extra.directory) ---\n\(extra.logTail())" }
        for (index, gateway) in gateways.enumerated() { text += "\n--- gateway \(index) ---\n\(gateway.logTail(25))" }
        return text
    }
}

/// `mqnamesrv` or `mqbroker` run from a configuration folder of its own, on a fixed port (so a restart
/// binds it again), logging to a file per start.
final class ServiceProcess: @unchecked Sendable {
    let name: String
    let executable: String
    let directory: String
    let port: Int
    private let confFile: String
    private let portKey: String
    private let settings: [String: String]
    private let readyLine: String
    private let lock = NSLock()
    private var child: SpawnedProcess?
    private var watchdog: Watchdog?
    private var startCount = 0

    init(
        name: String, executable: String, directory: String, confFile: String, port: Int, portKey: String, settings: [String: String],
        readyLine: String
    ) {
        self.name = name
        self.executable = executable
        self.directory = directory
        self.confFile = confFile
        self.port = port
        self.portKey = portKey
        self.settings = settings
        self.readyLine = readyLine
    }

    /// Starts the process; returns once it logged `readyLine`.
    func start() async throws {
        try FileManager.default.createDirectory(atPath: directory + "/conf", withIntermediateDirectories: true)
        let original = try String(contentsOfFile: NodeProcess.repositoryRoot + "/conf/" + confFile, encoding: .utf8)
        var overrides = settings
        overrides[portKey] = "\(port)"
        try NodeProcess.applying(overrides, to: original).write(toFile: directory + "/conf/" + confFile, atomically: true, encoding: .utf8)
        let generation = lock.withLock { () -> Int in
            startCount += 1
            return startCount
        }
        let logPath = directory + "/\(name)-\(generation).log"
        let child = try SpawnedProcess(
            executable: executable, arguments: ["-c", directory + "/conf"], environment: NodeProcess.childEnvironment(),
            standardOutputPath: logPath, standardErrorPath: logPath
        )
        let watchdog = try? Watchdog(guarding: child.pid)
        lock.withLock {
            self.child = child
            self.watchdog = watchdog
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while !child.standardError.contains(readyLine) {
            guard child.isRunning, ContinuousClock.now < deadline else {
                throw NodeProcess.Failure("\(name) did not start (running: \(child.isRunning)); log:\n\(child.standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Signals the process and waits until it exited (SIGKILL after 15 s).
    func stop(signal: Int32) async {
        let (child, watchdog) = lock.withLock { () -> (SpawnedProcess?, Watchdog?) in
            defer {
                self.child = nil
                self.watchdog = nil
            }
            return (self.child, self.watchdog)
        }
        guard let child else { return }
        child.signal(signal)
        if await child.waitForExit(timeout: .seconds(15)) == nil { await child.forceKill() }
        await watchdog?.dismiss()
    }

    func logTail(_ lineCount: Int = 30) -> String {
        let count = lock.withLock { startCount }
        let log = (1...max(1, count)).map { (try? String(contentsOfFile: directory + "/\(name)-\($0).log", encoding: .utf8)) ?? "" }
            .joined(separator: "\n--- restart ---\n")
        return log.split(separator: "\n").suffix(lineCount).joined(separator: "\n")
    }
}

/// A TCP port that is free now and below the ephemeral range, so that no outgoing connection takes it
/// between a process's stop and its restart.
func freePortBelowEphemeralRange() throws -> Int {
    for _ in 0..<200 {
        let candidate = Int.random(in: 20_000...30_000)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { continue }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(candidate).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound == 0 { return candidate }
    }
    throw NodeProcess.Failure("no free port in 20000...30000")
}
