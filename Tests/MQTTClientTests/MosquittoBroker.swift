import Foundation
import NIOCore
import NIOPosix

/// A `mosquitto` broker of its own for one test: listens on 127.0.0.1 on a free port, anonymous,
/// no persistence. Use `MosquittoBroker.with { broker in ... }`, which stops it whatever happens.
final class MosquittoBroker: Sendable {
    let port: Int
    let directory: URL
    private let process: ExternalProcess

    /// Where the mosquitto binaries are, or nil if they are not installed.
    static let mosquittoPath = ExternalProcess.find("mosquitto")
    static let mosquittoPubPath = ExternalProcess.find("mosquitto_pub")
    static let mosquittoSubPath = ExternalProcess.find("mosquitto_sub")

    static var isAvailable: Bool { mosquittoPath != nil }
    static var clientsAreAvailable: Bool { mosquittoPubPath != nil && mosquittoSubPath != nil }

    private init(port: Int, directory: URL, process: ExternalProcess) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    /// Runs `body` with a fresh broker and stops the broker afterwards, also when `body` throws.
    static func with<T>(allowAnonymous: Bool = true, _ body: (MosquittoBroker) async throws -> T) async throws -> T {
        let broker = try await start(allowAnonymous: allowAnonymous)
        do {
            let result = try await body(broker)
            await broker.stop()
            return result
        } catch {
            await broker.stop()
            throw error
        }
    }

    static func start(allowAnonymous: Bool = true) async throws -> MosquittoBroker {
        guard let mosquittoPath else { throw TestFailure("mosquitto is not installed") }
        // A port can be taken between finding it free and mosquitto binding it: try a few.
        var lastError: any Error = TestFailure("mosquitto did not start")
        for _ in 0..<3 {
            let port = try await freePort()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mosquitto-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let configuration = """
                listener \(port) 127.0.0.1
                allow_anonymous \(allowAnonymous)
                persistence false
                log_dest stdout
                log_type all
                """
            let configurationFile = directory.appendingPathComponent("mosquitto.conf")
            try configuration.write(to: configurationFile, atomically: true, encoding: .utf8)
            let process = try ExternalProcess.launch(mosquittoPath, ["-c", configurationFile.path])
            let broker = MosquittoBroker(port: port, directory: directory, process: process)
            do {
                try await broker.waitUntilAccepting(timeout: .seconds(5))
                return broker
            } catch {
                lastError = TestFailure("mosquitto on port \(port) did not start: \(error)\n\(broker.log)")
                await broker.stop()
            }
        }
        throw lastError
    }

    func stop() async {
        await process.terminate()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The broker's log so far, for failure messages.
    var log: String {
        process.outputText
    }

    private func waitUntilAccepting(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw TestFailure("mosquitto exited") }
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("port \(port) not accepting after \(timeout)")
    }

    /// A port nobody listens on: bind port 0 and let the kernel choose.
    private static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }
}

/// A child process whose output is collected as it arrives.
///
/// `@unchecked Sendable`: `Process` and `Pipe` are only touched through their thread-safe methods, and
/// the collected output is guarded by `lock`.
final class ExternalProcess: @unchecked Sendable {
    private let process: Process
    private let outputPipe = Pipe()
    private let lock = NSLock()
    private var output = Data()
    /// The pipe reached end-of-file: everything the process wrote is in `output`.
    private var outputEnded = false

    private init(process: Process) {
        self.process = process
    }

    /// The path of `name` in `PATH` or in the usual sbin directories (where Debian puts `mosquitto`).
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func launch(_ executable: String, _ arguments: [String]) throws -> ExternalProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let external = ExternalProcess(process: process)
        process.standardOutput = external.outputPipe
        process.standardError = external.outputPipe
        external.outputPipe.fileHandleForReading.readabilityHandler = { [weak external] handle in
            let data = handle.availableData
            guard let external else { return }
            external.lock.lock()
            if data.isEmpty {
                external.outputEnded = true
                handle.readabilityHandler = nil
            } else {
                external.output.append(data)
            }
            external.lock.unlock()
        }
        try process.run()
        return external
    }

    var isRunning: Bool { process.isRunning }

    /// Everything written to stdout and stderr so far.
    var outputText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: output, as: UTF8.self)
    }

    var outputLines: [String] {
        outputText.split(separator: "\n").map(String.init)
    }

    /// Waits for the process to exit by itself; returns its exit status.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                await terminate()
                throw TestFailure("\(process.executableURL?.lastPathComponent ?? "process") still running after \(timeout); output:\n\(outputText)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        // The last output may still be in the pipe: read until its end (bounded), so `outputText` is whole.
        let drainDeadline = ContinuousClock.now + .seconds(5)
        while !lock.withLock({ outputEnded }), ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        return process.terminationStatus
    }

    /// Kills the process and waits for it, polling, for up to 5 s. SIGKILL, because a child spawned from a
    /// runtime thread may inherit a signal mask that blocks SIGTERM, and then `Process.terminate()` is
    /// never acted on. Never `waitUntilExit()`: it can wait for good, and two tests blocked in it hold
    /// both threads of the cooperative pool on a 2-core machine, which stalls every other test.
    func terminate() async {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        outputPipe.fileHandleForReading.readabilityHandler = nil
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        outputPipe.fileHandleForReading.readabilityHandler = nil
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
