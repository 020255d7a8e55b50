import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The real `mqtt-node` executable, run as an operator runs it: from a configuration folder (a copy of
/// the repository's `conf/` with every listening port set to 0 or a port of its own, and the store in a
/// fresh temporary folder), logging to a file. Tests start it, kill it with SIGKILL, and start it again
/// on the same store.
///
/// `@unchecked Sendable`: the mutable state (the running child, the port, the start count) is guarded
/// by `lock`; tests start and stop a node from one task at a time.
final class NodeProcess: @unchecked Sendable {
    /// Settings written over the copies of `conf/*.conf`, per file.
    struct Options: Sendable {
        var service: [String: String] = [:]
        var connect: [String: String] = [:]
        var broker: [String: String] = [:]

        init(service: [String: String] = [:], connect: [String: String] = [:], broker: [String: String] = [:]) {
            self.service = service
            self.connect = connect
            self.broker = broker
        }

        /// Anonymous access off; `username` with HMAC-SHA1 passwords signed by `secretKey` (docs/auth.md).
        static func authenticated(username: String, secretKey: String) -> Options {
            Options(service: ["allowAnonymous": "false", "username": username, "secretKey": secretKey])
        }

        /// Every PUBACK / PUBREC only after the message reached the disk, so a SIGKILL loses nothing acknowledged.
        static let syncFlush = Options(broker: ["flushDiskType": "SYNC_FLUSH"])
    }

    /// Why a node could not be started or did not behave.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The folder holding `conf/`, `store/`, `namesrv/` and the logs; removed by `shutdown()`.
    let directory: String
    var confDirectory: String { directory + "/conf" }
    var storeDirectory: String { directory + "/store" }
    let options: Options

    private let lock = NSLock()
    private var child: SpawnedProcess?
    private var watchdog: Watchdog?
    private var boundPort = 0
    private var startCount = 0

    /// The MQTT port of the running node (the same across restarts).
    var port: Int { lock.withLock { boundPort } }

    /// The pid of the running node, nil when it is not running.
    var pid: pid_t? { lock.withLock { child?.pid } }

    private init(directory: String, options: Options) {
        self.directory = directory
        self.options = options
    }

    // MARK: Locating things

    /// The repository root (three levels above this file).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A product built beside the test bundle (`swift build` builds every product; the test target
    /// depends on `MQTTNodeMain` so that `swift test` does too).
    static func productPath(_ name: String) -> String? {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [bundleDirectory, bundleDirectory.deletingLastPathComponent()]
        candidates.append(URL(fileURLWithPath: repositoryRoot + "/.build/debug"))
        for candidate in candidates {
            let path = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// `mqtt-node`, if it has been built.
    static let binaryPath: String? = productPath("mqtt-node")

    /// `mqadmin`, if it has been built.
    static let adminPath: String? = productPath("mqadmin")

    /// A program found on `PATH` (or nil).
    static func executableOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The environment of children: the test's, without settings that would redirect a node.
    static func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["MQTT_CONF_DIR"] = nil
        environment["NAMESRV_ADDR"] = nil
        return environment.merging(extra) { $1 }
    }

    // MARK: Life cycle

    /// Writes a configuration folder and starts a node on it; returns once its MQTT port is bound.
    static func start(_ options: Options = Options()) async throws -> NodeProcess {
        guard binaryPath != nil else { throw Failure("mqtt-node is not built next to the tests (swift build builds it)") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mqtt-node-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/conf", withIntermediateDirectories: true)
        let node = NodeProcess(directory: directory, options: options)
        do {
            try node.writeConfiguration(mqttPort: 0)
            try await node.launch()
        } catch {
            await node.shutdown()
            throw error
        }
        return node
    }

    /// Copies `conf/*.conf` of the repository and sets what keeps parallel nodes apart: every listener on
    /// a port of its own (0 = any free one), the store and the name server data under `directory`.
    private func writeConfiguration(mqttPort: Int) throws {
        // Every other port is set to 0 by `applying`, whether these files name it yet or not.
        var connect = ["mqttPort": "\(mqttPort)"]
        connect.merge(options.connect) { $1 }
        var service = ["namesrvListenAddress": "127.0.0.1", "namesrvListenPort": "0"]
        service.merge(options.service) { $1 }
        var broker = [
            "storePathRootDir": storeDirectory,
            // Small segments: dozens of nodes run at once and each maps its commit log.
            "mappedFileSizeCommitLog": "\(16 * 1024 * 1024)",
        ]
        broker.merge(options.broker) { $1 }
        let namesrv = ["dataDir": directory + "/namesrv", "logDir": directory + "/logs"]
        let files: [(String, [String: String])] = [
            ("service.conf", service), ("connect.conf", connect), ("broker.conf", broker), ("namesrv.conf", namesrv),
        ]
        for (file, overrides) in files {
            let original = try String(contentsOfFile: Self.repositoryRoot + "/conf/" + file, encoding: .utf8)
            try Self.applying(overrides, to: original).write(toFile: confDirectory + "/" + file, atomically: true, encoding: .utf8)
        }
    }

    /// `text` (Java properties) with each key of `overrides` set: its line replaced, or appended. Any
    /// other key naming a port (`...Port`, `...port`) is set to 0 and any listen address to 127.0.0.1, so a
    /// listener added to `conf/` later cannot make parallel nodes collide (or collide with a system broker).
    static func applying(_ overrides: [String: String], to text: String) -> String {
        var remaining = overrides
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") {
                let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
                if let value = remaining.removeValue(forKey: key) {
                    lines.append("\(key)=\(value)")
                    continue
                }
                if key.hasSuffix("Port") || key.hasSuffix("port") {
                    lines.append("\(key)=0")
                    continue
                }
                if key.hasSuffix("ListenAddress") || key == "listenAddress" {
                    lines.append("\(key)=127.0.0.1")
                    continue
                }
            }
            lines.append(String(line))
        }
        for (key, value) in remaining.sorted(by: { $0.key < $1.key }) {
            lines.append("\(key)=\(value)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func launch() async throws {
        let (logPath, generation) = lock.withLock { () -> (String, Int) in
            startCount += 1
            return (directory + "/node-\(startCount).log", startCount)
        }
        let child = try SpawnedProcess(
            executable: Self.binaryPath!, arguments: ["-c", confDirectory, "--log-level", "debug"],
            environment: Self.childEnvironment(), standardOutputPath: logPath, standardErrorPath: logPath
        )
        let watchdog = try? Watchdog(guarding: child.pid)
        lock.withLock {
            self.child = child
            self.watchdog = watchdog
        }
        do {
            let port = try await waitForLog("MQTT listener", timeout: .seconds(30)) { Self.listeningPort(in: $0) }
            lock.withLock { boundPort = port }
        } catch {
            await stopChild(signal: SIGKILL)
            throw Failure("mqtt-node (start \(generation)) did not start listening: \(error)")
        }
    }

    /// Polls the log of the running start until `extract` finds what it looks for; throws (with the log)
    /// at the deadline or once the node has exited without logging it.
    func waitForLog<T>(_ what: String, timeout: Duration = .seconds(10), _ extract: (String) -> T?) async throws -> T {
        guard let child = lock.withLock({ self.child }) else { throw Failure("no \(what): mqtt-node is not running") }
        let deadline = ContinuousClock.now + timeout
        while true {
            // Read whether it runs before reading the log, so the last lines of a node that exits are read.
            let running = child.isRunning
            let log = child.standardError
            if let value = extract(log) { return value }
            guard running, ContinuousClock.now < deadline else {
                throw Failure("no \(what) in the log of mqtt-node within \(timeout) (running: \(running)); log:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The value of the metadata `key=VALUE` on the first log line whose message contains `message`
    /// (the node logs `... key=value key=value [source] message`, one line per event).
    static func logValue(_ key: String, onLineContaining message: String, in log: String) -> String? {
        for line in log.split(separator: "\n") where line.contains(message) {
            // A space before the key, so `address` does not match `node.address`.
            guard let range = line.range(of: " \(key)=[^ ]+", options: .regularExpression) else { continue }
            return String(line[range].dropFirst(key.count + 2))
        }
        return nil
    }

    /// The port of the "MQTT gateway listening address=0.0.0.0:PORT" log line.
    static func listeningPort(in log: String) -> Int? {
        logValue("address", onLineContaining: "MQTT gateway listening", in: log).flatMap(port(of:))
    }

    /// The `host:port` of the standalone node's in-process name server, from its log line
    /// "standalone node: name server in process nameServer=HOST:PORT" (written just after the MQTT
    /// listener's, so it may still be coming when `start` returns).
    func nameServerAddress(timeout: Duration = .seconds(10)) async throws -> String {
        try await waitForLog("name-server address", timeout: timeout) {
            Self.logValue("nameServer", onLineContaining: "standalone node: name server in process", in: $0)
        }
    }

    /// The port of a `host:port` address (IPv6 hosts in brackets).
    static func port(of address: String) -> Int? {
        address.lastIndex(of: ":").flatMap { Int(address[address.index(after: $0)...]) }
    }

    /// Signals the node and waits (at most 15 s, then SIGKILL) until it has exited; returns its exit status.
    @discardableResult
    private func stopChild(signal: Int32) async -> Int32? {
        let (child, watchdog) = lock.withLock { () -> (SpawnedProcess?, Watchdog?) in
            defer {
                self.child = nil
                self.watchdog = nil
            }
            return (self.child, self.watchdog)
        }
        guard let child else { return nil }
        child.signal(signal)
        var status = await child.waitForExit(timeout: .seconds(15))
        if status == nil {
            child.signal(SIGKILL)
            status = await child.waitForExit(timeout: .seconds(15))
        }
        await watchdog?.dismiss()
        return status
    }

    /// SIGKILL: the node dies mid-work, as in a crash or a power cut (with SYNC_FLUSH nothing
    /// acknowledged may be lost).
    func kill() async {
        await stopChild(signal: SIGKILL)
    }

    /// SIGTERM: the node flushes, unregisters and exits. Returns its exit status: 128 + 9 if it had to
    /// be killed after 15 s, nil if it could not even be reaped. The log stays readable until `shutdown()`.
    @discardableResult
    func stopGracefully() async -> Int32? {
        await stopChild(signal: SIGTERM)
    }

    /// Starts the node again on the same configuration, store and MQTT port.
    func restart() async throws {
        let port = self.port
        try writeConfiguration(mqttPort: port)
        try await launch()
        guard self.port == port else { throw Failure("the restarted node listens on \(self.port), not \(port)") }
    }

    /// Runs `mqadmin arguments...` to completion (at most `timeout`), as an operator runs it beside the
    /// node; its output is kept in the node's folder.
    func admin(_ arguments: [String], timeout: Duration = .seconds(20)) async throws -> SpawnedProcess.Completion {
        guard let adminPath = Self.adminPath else { throw Failure("mqadmin is not built next to the tests (swift build builds it)") }
        return try await SpawnedProcess.run(
            executable: adminPath, arguments: arguments, environment: Self.childEnvironment(),
            outputPathPrefix: directory + "/mqadmin-\(UUID().uuidString)", timeout: timeout
        )
    }

    /// Kills the node if it runs and removes its folder.
    func shutdown() async {
        await stopChild(signal: SIGKILL)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Everything every start of the node logged, in order.
    var log: String {
        let count = lock.withLock { startCount }
        return (1...max(1, count)).map { (try? String(contentsOfFile: directory + "/node-\($0).log", encoding: .utf8)) ?? "" }
            .joined(separator: "\n--- restart ---\n")
    }

    /// The last `lineCount` lines of the log, for failure messages.
    func logTail(_ lineCount: Int = 40) -> String {
        log.split(separator: "\n").suffix(lineCount).joined(separator: "\n")
    }
}

/// A process started with `posix_spawn`: standard input from /dev/null (or a pipe), output and error to
/// files (nothing to drain, nothing that can fill up and stall it), no other descriptor of the test
/// process inherited. Every wait has a deadline.
///
/// `@unchecked Sendable`: the exit status is written once, under `lock`.
final class SpawnedProcess: @unchecked Sendable {
    let pid: pid_t
    let standardOutputPath: String
    let standardErrorPath: String
    private let lock = NSLock()
    private var status: Int32?

    init(
        executable: String, arguments: [String], environment: [String: String],
        standardOutputPath: String, standardErrorPath: String, standardInputDescriptor: Int32? = nil
    ) throws {
        self.standardOutputPath = standardOutputPath
        self.standardErrorPath = standardErrorPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let standardInputDescriptor {
            posix_spawn_file_actions_adddup2(&actions, standardInputDescriptor, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, standardOutputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if standardErrorPath == standardOutputPath {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, standardErrorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        // Descriptors of other tests running in this process (sockets, pipes of their children) must
        // not live on in this child: a pipe would never reach end-of-file while it runs.
        if let addCloseFrom = Self.addCloseFrom { _ = addCloseFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A signal mask or ignored signals of the test runner's thread must not reach the node
        // (a node that cannot hear SIGTERM cannot stop gracefully).
        var emptySet = sigset_t()
        sigemptyset(&emptySet)
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        self.pid = pid
    }

    /// What a process run to completion left behind.
    struct Completion: Sendable {
        var status: Int32
        var standardOutput: String
        var standardError: String

        /// The lines of standard output, without empty ones.
        var lines: [String] { standardOutput.split(separator: "\n").map(String.init) }
    }

    /// Runs `executable` to completion, its output and error in `<outputPathPrefix>.out` and `.err`;
    /// SIGKILLs it and throws when it has not exited within `timeout`.
    static func run(
        executable: String, arguments: [String], environment: [String: String], outputPathPrefix: String, timeout: Duration
    ) async throws -> Completion {
        let child = try SpawnedProcess(
            executable: executable, arguments: arguments, environment: environment,
            standardOutputPath: outputPathPrefix + ".out", standardErrorPath: outputPathPrefix + ".err"
        )
        guard let status = await child.waitForExit(timeout: timeout) else {
            await child.forceKill()
            let command = ([executable] + arguments).joined(separator: " ")
            throw NodeProcess.Failure("\(command) did not finish within \(timeout); stderr:\n\(child.standardError)")
        }
        return Completion(status: status, standardOutput: child.standardOutput, standardError: child.standardError)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift does not import (it is a
    /// GNU extension); nil where the C library lacks it.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// The exit status if the process has exited (reaping it), else nil. 128 + n for death by signal n.
    func exitStatus() -> Int32? {
        lock.withLock {
            if let status { return status }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            guard result == pid else { return nil }
            // WIFEXITED / WEXITSTATUS are macros Swift does not import.
            status = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
            return status
        }
    }

    var isRunning: Bool { exitStatus() == nil }

    /// Polls (without blocking a thread of the cooperative pool) until the process exits; nil at the deadline.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus() { return status }
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    func signal(_ signal: Int32) {
        if exitStatus() == nil { kill(pid, signal) }
    }

    /// SIGKILL and reap (bounded).
    func forceKill() async {
        signal(SIGKILL)
        _ = await waitForExit(timeout: .seconds(15))
    }

    var standardOutput: String { (try? String(contentsOfFile: standardOutputPath, encoding: .utf8)) ?? "" }
    var standardError: String { (try? String(contentsOfFile: standardErrorPath, encoding: .utf8)) ?? "" }
}

/// Kills a node when the test process dies without stopping it (a crash, a time limit, a debugger
/// detaching), so no node outlives its test run: a shell whose standard input is a pipe that only this
/// process can write to; when this process dies the pipe reaches end-of-file and the shell SIGKILLs the node.
final class Watchdog: Sendable {
    private let shell: SpawnedProcess
    private let writeDescriptor: Int32

    init(guarding pid: pid_t) throws {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else { throw POSIXError(.EMFILE) }
        // Only this process may hold the write end (children spawned here close it anyway).
        _ = fcntl(descriptors[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(descriptors[1], F_SETFD, FD_CLOEXEC)
        defer { close(descriptors[0]) }
        writeDescriptor = descriptors[1]
        do {
            shell = try SpawnedProcess(
                executable: "/bin/sh", arguments: ["-c", "read _ignored; kill -9 \(pid) 2>/dev/null"],
                environment: ["PATH": "/usr/bin:/bin"], standardOutputPath: "/dev/null", standardErrorPath: "/dev/null",
                standardInputDescriptor: descriptors[0]
            )
        } catch {
            close(descriptors[1])
            throw error
        }
    }

    /// The node was stopped by the test: end the shell without letting it signal (the pid may be reused).
    func dismiss() async {
        await shell.forceKill()
        close(writeDescriptor)
    }
}

/// Bounds how many node tests run at once. Every node test runs a node process and Python or
/// mosquitto clients; dozens at once on a small machine starve the rest of the test run (in-process
/// tests with timing expectations) and each other.
actor NodeSlots {
    /// The one limiter of the test process: two node tests per core, at least two.
    static let shared = NodeSlots(limit: max(2, 2 * ProcessInfo.processInfo.activeProcessorCount))

    private let limit: Int
    private var inUse = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) {
        precondition(limit > 0)
        self.limit = limit
    }

    /// Runs `body` once a slot is free.
    func withSlot<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        if inUse < limit {
            inUse += 1
            return
        }
        // The slot is handed over by `release` (inUse stays counted).
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            inUse -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
