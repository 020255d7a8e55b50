import Foundation
import NameServer
import NIOCore
import NIOPosix
import Remoting
import Testing

/// `mqnamesrv` and `mqadmin` as real processes, as an operator runs them.
@Suite("mqnamesrv and mqadmin end to end", .serialized)
struct EndToEndTests {
    /// A product built beside the test bundle (`swift build` builds them all).
    static func productPath(_ name: String) -> String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static var productsBuilt: Bool { productPath("mqnamesrv") != nil && productPath("mqadmin") != nil }
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The environment of children, without the caller's NAMESRV_ADDR.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["NAMESRV_ADDR"] = nil
        environment["MQTT_CONF_DIR"] = nil
        return environment.merging(extra) { $1 }
    }

    /// A configuration folder whose namesrv.conf listens on loopback.
    static func makeConfDir(in folder: TemporaryFolder, name: String, port: Int = 0, extra: String = "") throws -> String {
        let confDir = folder.path + "/\(name)-conf"
        try FileManager.default.createDirectory(atPath: confDir, withIntermediateDirectories: true)
        let text = """
            listenAddress=127.0.0.1
            listenPort=\(port)
            dataDir=\(folder.path)/\(name)-data
            nodeExpirySeconds=5
            \(extra)
            """
        try text.write(toFile: confDir + "/namesrv.conf", atomically: true, encoding: .utf8)
        return confDir
    }

    /// A running `mqnamesrv -c CONF_DIR`.
    final class NameServerProcess {
        let confDir: String
        let child: ChildProcess
        let port: Int

        init(confDir: String) throws {
            self.confDir = confDir
            child = try ChildProcess(executable: EndToEndTests.productPath("mqnamesrv")!, arguments: ["-c", confDir], environment: EndToEndTests.environment())
            guard let port = child.waitForStderr("listening on 127\\.0\\.0\\.1:([0-9]+)", timeout: .seconds(20)).flatMap(Int.init) else {
                child.forceKill()
                throw TestFailure("mqnamesrv did not start: \(child.stderr)")
            }
            self.port = port
        }

        var address: String { "127.0.0.1:\(port)" }

        /// SIGTERM, and the exit status (nil if it did not exit within 10 s).
        func stopGracefully() -> Int32? {
            child.signal(SIGTERM)
            return child.waitForExit(timeout: .seconds(10))
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    /// Runs `mqadmin arguments...` to completion (at most 20 s).
    @discardableResult
    /// Runs mqadmin to completion. Waits without blocking a thread of the cooperative pool: on a loaded
    /// two-core machine a blocked pool would starve the heartbeats this test's registered nodes send.
    static func admin(_ arguments: [String], environment: [String: String] = environment()) async throws -> Result {
        let child = try ChildProcess(executable: productPath("mqadmin")!, arguments: arguments, environment: environment)
        guard let status = await child.waitForExitAsync(timeout: .seconds(20)) else {
            child.forceKill()
            throw TestFailure("mqadmin \(arguments.joined(separator: " ")) did not finish in 20 s")
        }
        return Result(status: status, stdout: child.stdout, stderr: child.stderr)
    }

    static func admin(_ arguments: String..., on server: NameServerProcess) async throws -> Result {
        try await admin(arguments + ["-n", server.address])
    }

    /// Expects success and returns standard output.
    static func expectOK(_ result: Result, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        #expect(result.status == 0, "exit \(result.status), stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.isEmpty, sourceLocation: sourceLocation)
        return result.stdout
    }

    /// Expects a failure with exactly one line on standard error containing every one of `fragments`.
    static func expectFailure(_ result: Result, status: Int32 = 1, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "exit \(result.status), stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderrLines.count == 1, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("mqadmin: "), sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.stderr.contains(fragment), "\"\(fragment)\" not in: \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// What every read-back after a restart must find.
    static func expectState(on server: NameServerProcess, extraKey: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var expectedKV = [
            "ALL_FIRST_TOPICS=sensors,metrics", "LMQ_CONNECT_NODES=10.0.0.1,10.0.0.2", "metrics=metrics/#", "sensors=sensors/+,sensors/#",
        ]
        if let extraKey { expectedKV.append(extraKey) }
        #expect(expectOK(try await admin("getKvList", "-s", "LMQ", on: server)).split(separator: "\n").map(String.init) == expectedKV.sorted(), sourceLocation: sourceLocation)
        #expect(expectOK(try await admin("topicList", on: server)) == "metrics\nsensors\n", sourceLocation: sourceLocation)
        let route = expectOK(try await admin("topicRoute", "-t", "sensors", on: server))
        let decoded = try JSONDecoder().decode(TopicRoute.self, from: Data(route.utf8))
        #expect(decoded == TopicRoute(topic: "sensors", storeAddresses: ["10.0.0.1:10911", "10.0.0.2:10911"]), sourceLocation: sourceLocation)
        #expect(expectOK(try await admin("getKvConfig", "-s", "OPS", "-k", "owner", on: server)) == "team-a\n", sourceLocation: sourceLocation)
    }

    @Test("every mqadmin command against a real mqnamesrv; everything survives a graceful restart and kill -9", .enabled(if: productsBuilt))
    func everyCommandAndRestarts() async throws {
        let folder = TemporaryFolder("e2e")
        defer { folder.remove() }
        let confDir = try Self.makeConfDir(in: folder, name: "a")
        var server = try NameServerProcess(confDir: confDir)
        defer { server.child.forceKill() }

        // KV, with command names in any case.
        #expect(Self.expectOK(try await Self.admin("updateKvConfig", "-s", "LMQ", "-k", "LMQ_CONNECT_NODES", "-v", "10.0.0.1,10.0.0.2", on: server))
            == "updated LMQ/LMQ_CONNECT_NODES on \(server.address)\n")
        _ = Self.expectOK(try await Self.admin("updatekvconfig", "-s", "LMQ", "-k", "sensors", "-v", "sensors/+,sensors/#", on: server))
        _ = Self.expectOK(try await Self.admin("UPDATEKVCONFIG", "-s", "LMQ", "-k", "metrics", "-v", "metrics/#", on: server))
        _ = Self.expectOK(try await Self.admin("updateKvConfig", "-s", "OPS", "-k", "owner", "-v", "team-a", on: server))
        _ = Self.expectOK(try await Self.admin("updateKvConfig", "-s", "OPS", "-k", "temporary", "-v", "x", on: server))
        #expect(Self.expectOK(try await Self.admin("getKvConfig", "-s", "LMQ", "-k", "sensors", on: server)) == "sensors/+,sensors/#\n")
        #expect(Self.expectOK(try await Self.admin("deleteKvConfig", "-s", "OPS", "-k", "temporary", on: server)) == "deleted OPS/temporary on \(server.address)\n")
        Self.expectFailure(try await Self.admin("getKvConfig", "-s", "OPS", "-k", "temporary", on: server), "key temporary not found in namespace OPS")
        Self.expectFailure(try await Self.admin("deleteKvConfig", "-s", "OPS", "-k", "temporary", on: server), "not found")
        Self.expectFailure(try await Self.admin("getKvList", "-s", "NOPE", on: server), "namespace NOPE not found")

        // Topics: by store address, and by cluster once a store node has registered.
        #expect(Self.expectOK(try await Self.admin("updateTopic", "-t", "sensors", "-b", "10.0.0.1:10911", on: server))
            == "updated topic sensors on \(server.address): stores 10.0.0.1:10911\n")
        _ = Self.expectOK(try await Self.admin("updateTopic", "-t", "sensors", "-b", "10.0.0.2:10911", on: server))
        _ = Self.expectOK(try await Self.admin("updateTopic", "-t", "alarms", on: server))
        Self.expectFailure(try await Self.admin("updateTopic", "-t", "metrics", "-c", "c1", on: server), "no live store node is registered in cluster c1")
        let remoting = RemotingClient()
        let client = RemotingNameServerClient(address: RemotingAddress(host: "127.0.0.1", port: server.port), remotingClient: remoting)
        try await client.registerNode(.store(name: "broker-a", cluster: "c1", address: "10.0.0.9:10911"))
        try await client.registerNode(.gateway(address: "10.0.0.5:7001"))
        // Both nodes heartbeat while the commands below run, however slow a loaded machine makes them.
        let heartbeats = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                try? await client.heartbeat(kind: .store, address: "10.0.0.9:10911")
                try? await client.heartbeat(kind: .gateway, address: "10.0.0.5:7001")
            }
        }
        #expect(Self.expectOK(try await Self.admin("updateTopic", "-t", "metrics", "-c", "c1", on: server))
            == "updated topic metrics on \(server.address): stores 10.0.0.9:10911\n")
        let clusters = Self.expectOK(try await Self.admin("clusterList", on: server)).split(separator: "\n")
        #expect(clusters.first?.hasPrefix("#Cluster") == true)
        #expect(clusters.count == 2 && clusters[1].hasPrefix("c1") && clusters[1].contains("broker-a") && clusters[1].contains("10.0.0.9:10911"))
        let gateways = Self.expectOK(try await Self.admin("gatewayList", on: server)).split(separator: "\n")
        #expect(gateways.count == 2 && gateways[1].hasPrefix("10.0.0.5:7001") && gateways[1].contains("s ago"))
        #expect(Self.expectOK(try await Self.admin("deleteTopic", "-t", "alarms", on: server)) == "deleted topic alarms on \(server.address)\n")
        Self.expectFailure(try await Self.admin("topicRoute", "-t", "alarms", on: server), "topic alarms does not exist")

        // The nodes stop heartbeating: gone after the 5 s expiry.
        heartbeats.cancel()
        _ = await heartbeats.result
        try await Task.sleep(for: .milliseconds(5_600))
        #expect(Self.expectOK(try await Self.admin("gatewayList", on: server)).split(separator: "\n").count == 1)
        await remoting.shutdown()

        // signPassword: the known answer of rocketmq-mqtt's scheme.
        #expect(Self.expectOK(try await Self.admin(["signPassword", "--client-id", "clientId", "--secret-key", "secret"])) == "bRzy/Ltu4auwF5Okbs4pi8ArMWY=\n")
        // NAMESRV_ADDR is the default for -n.
        #expect(Self.expectOK(try await Self.admin(["topicList"], environment: Self.environment(["NAMESRV_ADDR": server.address]))) == "metrics\nsensors\n")

        try await Self.expectState(on: server)

        // Graceful restart.
        #expect(server.stopGracefully() == 0, "mqnamesrv did not exit cleanly on SIGTERM: \(server.child.stderr)")
        #expect(server.child.stderr.contains("received SIGTERM, shutting down"))
        server = try NameServerProcess(confDir: confDir)
        try await Self.expectState(on: server)

        // kill -9 right after a write returned: the write is there after the restart.
        _ = Self.expectOK(try await Self.admin("updateKvConfig", "-s", "LMQ", "-k", "lastWrite", "-v", "before-kill", on: server))
        server.child.forceKill()
        server = try NameServerProcess(confDir: confDir)
        try await Self.expectState(on: server, extraKey: "lastWrite=before-kill")
    }

    @Test("two name servers: writes reach both; with one down the write reports a partial failure and reads use the other", .enabled(if: productsBuilt))
    func twoNameServers() async throws {
        let folder = TemporaryFolder("e2e-two")
        defer { folder.remove() }
        let a = try NameServerProcess(confDir: try Self.makeConfDir(in: folder, name: "a"))
        defer { a.child.forceKill() }
        let b = try NameServerProcess(confDir: try Self.makeConfDir(in: folder, name: "b"))
        defer { b.child.forceKill() }
        let both = "\(a.address);\(b.address)"

        let written = Self.expectOK(try await Self.admin(["updateKvConfig", "-n", both, "-s", "LMQ", "-k", "LMQ_CONNECT_NODES", "-v", "10.0.0.1"]))
        #expect(written == "updated LMQ/LMQ_CONNECT_NODES on \(a.address)\nupdated LMQ/LMQ_CONNECT_NODES on \(b.address)\n")
        #expect(Self.expectOK(try await Self.admin("getKvConfig", "-s", "LMQ", "-k", "LMQ_CONNECT_NODES", on: a)) == "10.0.0.1\n")
        #expect(Self.expectOK(try await Self.admin("getKvConfig", "-s", "LMQ", "-k", "LMQ_CONNECT_NODES", on: b)) == "10.0.0.1\n")
        _ = Self.expectOK(try await Self.admin(["updateTopic", "-n", both, "-t", "sensors"]))

        b.child.forceKill()
        let partial = try await Self.admin(["updateKvConfig", "-n", both, "-s", "LMQ", "-k", "LMQ_CONNECT_NODES", "-v", "10.0.0.2"])
        Self.expectFailure(partial, "partial failure", "failed on 1 of 2 name servers", "\(b.address) (connection refused by \(b.address))", "succeeded on \(a.address)")
        #expect(partial.stdout == "updated LMQ/LMQ_CONNECT_NODES on \(a.address)\n")
        // Reads skip the server that is down.
        #expect(Self.expectOK(try await Self.admin(["getKvConfig", "-n", "\(b.address);\(a.address)", "-s", "LMQ", "-k", "LMQ_CONNECT_NODES"])) == "10.0.0.2\n")
        Self.expectFailure(try await Self.admin(["topicList", "-n", b.address]), "connection refused by \(b.address)")
        Self.expectFailure(try await Self.admin(["deleteTopic", "-n", b.address, "-t", "sensors"]), "deleteTopic failed on \(b.address)")
    }

    @Test("bad input: one line on standard error and a non-zero exit", .enabled(if: productsBuilt))
    func badInput() async throws {
        let folder = TemporaryFolder("e2e-bad")
        defer { folder.remove() }
        let server = try NameServerProcess(confDir: try Self.makeConfDir(in: folder, name: "a", extra: "maxValueSizeBytes=4096"))
        defer { server.child.forceKill() }

        Self.expectFailure(try await Self.admin(["frobnicate", "-n", server.address]), status: 64, "unknown command 'frobnicate'")
        Self.expectFailure(try await Self.admin("getKvConfig", "-s", "LMQ", on: server), status: 64, "Missing expected argument", "--key", "mqadmin getKvConfig --help")
        Self.expectFailure(try await Self.admin("updateKvConfig", "-s", "LMQ", "-k", "k", on: server), status: 64, "--value")
        Self.expectFailure(try await Self.admin(["topicList", "-n", "nonsense"]), status: 64, "name server address \"nonsense\" is not host:port")
        Self.expectFailure(try await Self.admin("updateTopic", "-t", "a", "-b", "x:1", "-c", "c", on: server), status: 64, "not both")
        let oversized = String(repeating: "x", count: 5_000)
        Self.expectFailure(
            try await Self.admin("updateKvConfig", "-s", "LMQ", "-k", "big", "-v", oversized, on: server),
            "value of 5000 bytes exceeds the limit of 4096 bytes"
        )
        Self.expectFailure(try await Self.admin("getKvConfig", "-s", "LMQ", "-k", "big", on: server), "key big not found")
        Self.expectFailure(try await Self.admin("updateTopic", "-t", "a/b", on: server), "topic \"a/b\" contains \"/\"")
        Self.expectFailure(try await Self.admin(["topicList", "-n", "127.0.0.1:1"]), "connection refused by 127.0.0.1:1")

        // Help is not an error.
        let help = try await Self.admin(["--help"])
        #expect(help.status == 0 && help.stdout.contains("updateKvConfig") && help.stdout.contains("signPassword"))
        let commandHelp = try await Self.admin(["help", "updatekvconfig"])
        #expect(commandHelp.status == 0 && commandHelp.stdout.contains("-s, --namespace"))
    }

    @Test("a malformed frame sent to mqnamesrv: that connection is closed, the reason is logged, others are served", .enabled(if: productsBuilt))
    func malformedFrame() async throws {
        let folder = TemporaryFolder("e2e-malformed")
        defer { folder.remove() }
        let server = try NameServerProcess(confDir: try Self.makeConfDir(in: folder, name: "a"))
        defer { server.child.forceKill() }

        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: server.port).get()
        try await raw.writeAndFlush(ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0x01, 0x00]))
        let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await raw.closeFuture.get(); return true }
            group.addTask { try await Task.sleep(for: .seconds(5)); return false }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        #expect(closed, "mqnamesrv kept a connection that sent a 2 GiB length")
        if !closed { try? await raw.close() }
        let logLine = server.child.waitForStderr("([^\n]*malformed frame from client[^\n]*)", timeout: .seconds(5))
        #expect(logLine?.contains("frame of 2147483651 bytes exceeds the limit of 16777216 bytes") == true, "reason not logged: \(server.child.stderr)")
        _ = Self.expectOK(try await Self.admin("updateKvConfig", "-s", "A", "-k", "b", "-v", "c", on: server))
        #expect(Self.expectOK(try await Self.admin("getKvConfig", "-s", "A", "-k", "b", on: server)) == "c\n")
    }

    @Test("bin/mqnamesrv start returns once the port answers; status and stop work; bin/mqadmin reaches it", .enabled(if: productsBuilt))
    func startStopScript() async throws {
        let folder = TemporaryFolder("e2e-script")
        defer { folder.remove() }
        // A free port: bind one, note it, release it.
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress!.port!
        try await probe.close()
        let confDir = try Self.makeConfDir(in: folder, name: "s", port: port)
        let script = Self.repositoryRoot.appendingPathComponent("bin/mqnamesrv").path
        let environment = Self.environment([
            "MQNAMESRV_BIN": Self.productPath("mqnamesrv")!, "MQADMIN_BIN": Self.productPath("mqadmin")!,
            "MQNAMESRV_START_TIMEOUT": "20", "MQNAMESRV_STOP_TIMEOUT": "10",
        ])
        func run(_ executable: String, _ arguments: [String]) throws -> Result {
            guard let result = try runLeavingDaemon(executable, arguments, environment: environment, timeout: .seconds(30)) else {
                throw TestFailure("\(executable) \(arguments) did not finish in 30 s")
            }
            return Result(status: result.status, stdout: result.stdout, stderr: result.stderr)
        }
        let pidFile = "\(folder.path)/s-data/mqnamesrv.pid"
        defer {
            // Whatever happened, leave no server behind.
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGKILL)
            }
        }

        let started = try run(script, ["start", "-c", confDir])
        #expect(started.status == 0, "\(started.stdout)\(started.stderr)")
        #expect(started.stdout.contains("started (pid"))
        // Returned once the port answers: a request succeeds at once.
        let admin = Self.repositoryRoot.appendingPathComponent("bin/mqadmin").path
        let written = try run(admin, ["updateKvConfig", "-n", "127.0.0.1:\(port)", "-s", "S", "-k", "k", "-v", "v"])
        #expect(written.status == 0, "\(written.stderr)")
        let status = try run(script, ["status", "-c", confDir])
        #expect(status.status == 0 && status.stdout.contains("running (pid"))
        #expect(try run(script, ["start", "-c", confDir]).stdout.contains("already running"))
        let stopped = try run(script, ["stop", "-c", confDir])
        #expect(stopped.status == 0 && stopped.stdout.contains("stopped (pid"), "\(stopped.stdout)\(stopped.stderr)")
        let after = try run(script, ["status", "-c", confDir])
        #expect(after.status == 3 && after.stdout.contains("not running"))
        #expect(!FileManager.default.fileExists(atPath: pidFile))
        let log = try String(contentsOfFile: "\(folder.path)/s-data/logs/namesrv.log", encoding: .utf8)
        #expect(log.contains("listening on 127.0.0.1:\(port)") && log.contains("received SIGTERM"))
        let usage = try run(script, ["bogus"])
        #expect(usage.status == 2 && usage.stderr.contains("unknown command: bogus"))
    }
}
