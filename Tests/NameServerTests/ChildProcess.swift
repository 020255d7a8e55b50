import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process whose standard output and error are read continuously (a full pipe would stall it)
/// and kept for the test to inspect. Every wait has a deadline.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before `run()` and only queried after; the collected output
    // lives behind `lock`.
    let process = Process()
    private let lock = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()
    private let drained = DispatchGroup()

    init(executable: String, arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        try process.run()
        drain(output.fileHandleForReading) { [self] chunk in stdoutData.append(chunk) }
        drain(error.fileHandleForReading) { [self] chunk in stderrData.append(chunk) }
    }

    private func drain(_ handle: FileHandle, into append: @escaping @Sendable (Data) -> Void) {
        drained.enter()
        let thread = Thread { [lock, drained] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock()
                append(chunk)
                lock.unlock()
            }
            drained.leave()
        }
        thread.start()
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: stdoutData, as: UTF8.self) }
    var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: stderrData, as: UTF8.self) }
    var isRunning: Bool { process.isRunning }

    /// Waits for the exit; returns its status, or `nil` if it is still running at the deadline.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            usleep(5_000)
        }
        // The pipes reach end-of-file once the child (and anything it started) has closed them.
        _ = drained.wait(timeout: .now() + 5)
        return process.terminationStatus
    }

    /// `waitForExit(timeout:)` polling with `Task.sleep`, so no thread of the cooperative pool is blocked.
    func waitForExitAsync(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return waitForExit(timeout: .seconds(5))
    }

    /// Waits until standard error matches `pattern` (a regular expression) and returns the first
    /// capture group, or `nil` at the deadline or if the process exits first.
    func waitForStderr(_ pattern: String, timeout: Duration) -> String? {
        let regex = try! NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = stderr
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
                return Range(range, in: text).map { String(text[$0]) }
            }
            if !process.isRunning { return nil }
            usleep(10_000)
        }
        return nil
    }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// SIGKILL (SIGTERM may be blocked in children of the test runner) and reap.
    func forceKill() {
        signal(SIGKILL)
        _ = waitForExit(timeout: .seconds(10))
    }
}

/// Runs a program that leaves a daemon behind (`bin/mqnamesrv start`) and waits for the program itself.
///
/// Not through `Process`: on Linux it learns that a child exited from a socket the child inherits, and a
/// daemon the child starts inherits it too, so `Process` would wait for the daemon. Here the program
/// gets only standard input (/dev/null), output and error (files), and its exit is read with `waitpid`.
func runLeavingDaemon(
    _ executable: String, _ arguments: [String], environment: [String: String], timeout: Duration
) throws -> (status: Int32, stdout: String, stderr: String)? {
    let outputPath = NSTemporaryDirectory() + "spawn-\(UUID().uuidString).out"
    let errorPath = NSTemporaryDirectory() + "spawn-\(UUID().uuidString).err"
    defer {
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: errorPath)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
    let deadline = ContinuousClock.now + timeout
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        guard ContinuousClock.now < deadline else {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            return nil
        }
        usleep(10_000)
    }
    // WIFEXITED / WEXITSTATUS are macros Swift does not import.
    let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    let error = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    return (exitStatus, output, error)
}
