import Foundation
import MQTTClient
import MQTTCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A product built beside the test bundle (`swift build` builds them all).
private func productPath(_ name: String) -> String? {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

private let nodeAndAdminBuilt = productPath("mqtt-node") != nil && productPath("mqadmin") != nil

/// The real `mqtt-node` in standalone mode and the real `mqadmin` against its name server, as an
/// operator runs them.
@Suite("mqtt-node standalone with mqadmin, end to end", .enabled(if: nodeAndAdminBuilt), .timeLimit(.minutes(2)))
struct StandaloneNodeEndToEndTests {
    @Test("mqadmin lists the topics, wildcard filters and gateway of a standalone node it never configured")
    func mqadminAgainstStandaloneNode() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mqtt-node-e2e-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let confDir = try makeConfDir(in: folder)

        let node = try TestProcess(executable: productPath("mqtt-node")!, arguments: ["-c", confDir], environment: childEnvironment())
        defer { node.forceKill() }
        let mqttPort = try #require(
            await node.waitForStderr("address=[0-9.]+:([0-9]+) .*MQTT gateway listening", timeout: .seconds(30)).flatMap { Int($0) },
            "mqtt-node did not start: \(node.stderr)"
        )
        let nameServerPort = try #require(
            await node.waitForStderr("nameServer=127\\.0\\.0\\.1:([0-9]+)", timeout: .seconds(10)).flatMap { Int($0) },
            "no name-server address in the log: \(node.stderr)"
        )
        #expect(nameServerPort != 0 && nameServerPort != mqttPort)
        let nameServer = "127.0.0.1:\(nameServerPort)"
        #expect(FileManager.default.fileExists(atPath: folder + "/store/namesrv/namesrv.db"))

        let subscriber = MQTTClient(configuration: .init(host: "127.0.0.1", port: mqttPort, clientIdentifier: "e2e-sub", protocolVersion: .v5))
        _ = try await subscriber.connect()
        let messages = MessageCollector(subscriber)
        #expect(try await subscriber.subscribe(to: "e2e/+/temp", qos: .atLeastOnce) == .atLeastOnce)
        #expect(try await subscriber.subscribe(to: "e2e/#", qos: .atLeastOnce) == .atLeastOnce)
        let publisher = MQTTClient(configuration: .init(host: "127.0.0.1", port: mqttPort, clientIdentifier: "e2e-pub", protocolVersion: .v3_1_1))
        _ = try await publisher.connect()
        try await publisher.publish(to: "e2e/1/temp", payload: "20.5", qos: .atLeastOnce)
        try await publisher.publish(to: "news/today", payload: "headline", qos: .atLeastOnce)
        // Delivered once per subscription it matches.
        #expect(try await messages.wait(for: 2).map(\.payloadString) == ["20.5", "20.5"])

        // The writes are made in the background: wait until topicList shows both first topics.
        var topics: [String] = []
        try await waitUntil("mqadmin topicList to list e2e and news (last: \(topics))", timeout: .seconds(15)) {
            topics = (try? await admin(["topicList", "-n", nameServer]))?.lines ?? []
            return topics == ["e2e", "news"]
        }

        let filters = try await admin(["getKvConfig", "-s", "LMQ", "-k", "e2e", "-n", nameServer])
        #expect(filters.status == 0, "stderr: \(filters.stderr)")
        #expect(filters.lines.count == 1)
        #expect(Set(filters.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")) == ["e2e/+/temp", "e2e/#"])

        let kvList = try await admin(["getKvList", "-s", "LMQ", "-n", nameServer])
        #expect(kvList.status == 0, "stderr: \(kvList.stderr)")
        let allFirstTopics = kvList.lines.first { $0.hasPrefix("ALL_FIRST_TOPICS=") }
        #expect(allFirstTopics.map { Set($0.dropFirst("ALL_FIRST_TOPICS=".count).split(separator: ",")) } == ["e2e", "news"])
        #expect(kvList.lines.contains { $0.hasPrefix("e2e=") })

        let gateways = try await admin(["gatewayList", "-n", nameServer])
        #expect(gateways.status == 0, "stderr: \(gateways.stderr)")
        // A header line and this node, on its MQTT port.
        #expect(gateways.lines.count == 2, "\(gateways.stdout)")
        #expect(gateways.lines.last?.split(separator: " ").first?.hasSuffix(":\(mqttPort)") == true, "\(gateways.stdout)")

        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        node.signal(SIGTERM)
        let status = await node.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "stderr: \(node.stderr)")
        // The gateway said goodbye to its name server before that stopped.
        #expect(node.stderr.contains("node unregistered"))
    }

    /// connect.conf, service.conf and broker.conf of a standalone node on free loopback ports.
    private func makeConfDir(in folder: String) throws -> String {
        let confDir = folder + "/conf"
        try FileManager.default.createDirectory(atPath: confDir, withIntermediateDirectories: true)
        try "mqttPort=0\nmqttListenAddress=127.0.0.1\n".write(toFile: confDir + "/connect.conf", atomically: true, encoding: .utf8)
        try """
            allowAnonymous=true
            NAMESRV_ADDR=
            autoCreateFirstTopic=true
            namesrvListenAddress=127.0.0.1
            namesrvListenPort=0

            """.write(toFile: confDir + "/service.conf", atomically: true, encoding: .utf8)
        try """
            storePathRootDir=\(folder)/store
            flushDiskType=ASYNC_FLUSH
            mappedFileSizeCommitLog=16777216

            """.write(toFile: confDir + "/broker.conf", atomically: true, encoding: .utf8)
        return confDir
    }

    /// The environment of children, without the caller's NAMESRV_ADDR and MQTT_CONF_DIR.
    private func childEnvironment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["NAMESRV_ADDR"] = nil
        environment["MQTT_CONF_DIR"] = nil
        return environment
    }

    private struct AdminResult {
        var status: Int32
        var stdout: String
        var stderr: String
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    /// Runs `mqadmin arguments...` to completion (at most 20 s).
    private func admin(_ arguments: [String]) async throws -> AdminResult {
        let child = try TestProcess(executable: productPath("mqadmin")!, arguments: arguments, environment: childEnvironment())
        guard let status = await child.waitForExit(timeout: .seconds(20)) else {
            child.forceKill()
            throw TestFailure("mqadmin \(arguments.joined(separator: " ")) did not finish in 20 s")
        }
        return AdminResult(status: status, stdout: child.stdout, stderr: child.stderr)
    }
}

/// A child process whose output is read continuously (a full pipe would stall it) and kept. The waits
/// poll with `Task.sleep`, so they hold no thread of the cooperative pool.
///
/// `@unchecked Sendable`: `process` is configured before `run()` and only queried after; the collected
/// output lives behind `lock`.
private final class TestProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()
    private let drained = DispatchGroup()

    init(executable: String, arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
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
                lock.withLock { append(chunk) }
            }
            drained.leave()
        }
        thread.start()
    }

    var stdout: String { lock.withLock { String(decoding: stdoutData, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: stderrData, as: UTF8.self) } }

    /// The exit status, or `nil` if it is still running at the deadline.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // The pipes reach end-of-file once the child has closed them.
        _ = drained.wait(timeout: .now() + 5)
        return process.terminationStatus
    }

    /// The first capture group of `pattern` once standard error matches it; `nil` at the deadline or
    /// if the process exits first.
    func waitForStderr(_ pattern: String, timeout: Duration) async -> String? {
        let regex = try! NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = stderr
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
                return Range(range, in: text).map { String(text[$0]) }
            }
            if !process.isRunning { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// SIGKILL and reap; nothing when it already exited.
    func forceKill() {
        guard process.isRunning else { return }
        signal(SIGKILL)
        process.waitUntilExit()
    }
}
