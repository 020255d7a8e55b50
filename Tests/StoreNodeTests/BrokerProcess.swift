import Foundation
import StoreNode

#if canImport(Glibc)
import Glibc
#endif

/// The real `mqbroker` executable run from a configuration folder of its own, logging to a file; tests
/// start it, SIGKILL it, and start it again on the same store and port. (A smaller cousin of the
/// gateway tests' `NodeProcess`.)
///
/// `@unchecked Sendable`: `child` and `port` are guarded by `lock`; a test drives one broker from one task.
final class BrokerProcess: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    let directory: String
    var confDirectory: String { directory + "/conf" }
    var storeDirectory: String { directory + "/store" }
    private let settings: [String: String]
    private let lock = NSLock()
    private var child: pid_t?
    /// The port of every start: below the ephemeral range, so that it is still free for a restart.
    private var boundPort: Int
    private var startCount = 0

    var port: Int { lock.withLock { boundPort } }

    /// The repository root (three levels above this file).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `mqbroker` next to the test bundle or in `.build/debug` (`swift build` builds it).
    static let binaryPath: String? = {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundleDirectory, bundleDirectory.deletingLastPathComponent(), URL(fileURLWithPath: repositoryRoot + "/.build/debug")]
        return candidates.map { $0.appendingPathComponent("mqbroker").path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// - Parameter settings: broker.conf keys set over the defaults of a test (loopback, port 0, small segments).
    init(settings: [String: String]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mqbroker-test-\(UUID().uuidString)").path
        self.settings = settings
        boundPort = try freePortBelowEphemeralRange()
        try FileManager.default.createDirectory(atPath: confDirectory, withIntermediateDirectories: true)
    }

    private func writeConfiguration(port: Int) throws {
        var values = [
            "brokerListenAddress": "127.0.0.1",
            "listenPort": "\(port)",
            "storePathRootDir": storeDirectory,
            "mappedFileSizeCommitLog": "\(8 * 1024 * 1024)",
            "namesrvAddr": "",
        ]
        values.merge(settings) { $1 }
        let text = values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
        try text.write(toFile: confDirectory + "/broker.conf", atomically: true, encoding: .utf8)
    }

    /// Starts the broker (on the port of the previous start, if any); returns once it listens.
    func start() async throws {
        guard let binary = Self.binaryPath else { throw Failure("mqbroker is not built (swift build --product mqbroker)") }
        let (port, generation) = lock.withLock { () -> (Int, Int) in
            startCount += 1
            return (boundPort, startCount)
        }
        try writeConfiguration(port: port)
        let logPath = directory + "/broker-\(generation).log"
        var environment = ProcessInfo.processInfo.environment
        environment["NAMESRV_ADDR"] = nil
        environment["MQTT_CONF_DIR"] = nil
        let pid = try Self.spawn(binary, ["-c", confDirectory], environment: environment, outputPath: logPath)
        lock.withLock { child = pid }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let bound = Self.listeningPort(in: log) {
                lock.withLock { boundPort = bound }
                return
            }
            if let status = exitStatus() { throw Failure("mqbroker exited with \(status) during start-up:\n\(log)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(signal: SIGKILL)
        _ = await waitForExit()
        throw Failure("mqbroker did not start listening within 30 s")
    }

    /// The port of the `store node listening` line (`listen=127.0.0.1:PORT`).
    static func listeningPort(in log: String) -> Int? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("store node listening") }),
            let range = line.range(of: "listen=127.0.0.1:")
        else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    func kill(signal: Int32) {
        if let pid = lock.withLock({ child }) { _ = Glibc.kill(pid, signal) }
    }

    /// The exit status once the process has exited (reaping it); 128 + n for death by signal n.
    func exitStatus() -> Int32? {
        lock.withLock {
            guard let pid = child else { return nil }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            child = nil
            return (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
        }
    }

    /// Waits (bounded) for the process to exit.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus() { return status }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// SIGKILLs a broker still running and removes the folder.
    func cleanUp() async {
        if lock.withLock({ child }) != nil {
            kill(signal: SIGKILL)
            _ = await waitForExit(timeout: .seconds(10))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift does not import; nil where
    /// the C library lacks it.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    private static func spawn(_ executable: String, _ arguments: [String], environment: [String: String], outputPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Sockets of other tests running in this process (a listener above all) must not live on in the
        // broker: a server of another test could not bind its port again.
        if let addCloseFrom = Self.addCloseFrom { _ = addCloseFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test runner's blocked signals must not reach the broker (it must hear SIGTERM).
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
        return pid
    }
}
