import Foundation
import Testing

/// The real `mqtt-node` used by `mosquitto_pub` and `mosquitto_sub`, as an operator or a shell script
/// would: each test starts a node of its own on a free loopback port.
@Suite(
    "mqtt-node with mosquitto_pub / mosquitto_sub",
    .enabled(if: MosquittoClient.isAvailable, "mosquitto_pub, mosquitto_sub and a built mqtt-node are needed"),
    .timeLimit(.minutes(3))
)
struct NodeMosquittoClientTests {
    static let protocols = ["mqttv31", "mqttv311", "mqttv5"]

    @Test("QoS 0, 1 and 2 published by mosquitto_pub reach mosquitto_sub at min(published, granted 1), in order", arguments: protocols)
    func publishSubscribe(protocolName: String) async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            let subscriber = try await MosquittoClient.subscribe(
                node: node, protocolName: protocolName, ["-t", "\(prefix)/#", "-q", "1", "-C", "3", "-W", "30", "-F", "MSG %t %q %r %p"]
            )
            for qos in 0...2 {
                try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", "\(prefix)/a", "-m", "m\(qos)", "-q", "\(qos)"])
            }
            #expect(await subscriber.waitForExit(timeout: .seconds(30)) == 0)
            #expect(MosquittoClient.messages(subscriber) == ["\(prefix)/a 0 0 m0", "\(prefix)/a 1 0 m1", "\(prefix)/a 1 0 m2"])
        }
    }

    @Test("retained: kept and sent with RETAIN set to a later mosquitto_sub; an empty retained message clears it", arguments: protocols)
    func retained(protocolName: String) async throws {
        try await withNode { node in
            let topic = PahoScenario.makePrefix() + "/state"
            try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", topic, "-m", "kept", "-q", "1", "-r"])
            let first = try await MosquittoClient.run(
                MosquittoClient.sub, node: node, protocolName: protocolName, ["-t", topic, "-C", "1", "-W", "20", "-F", "MSG %r %t %p"]
            )
            #expect(first.status == 0)
            #expect(MosquittoClient.messages(first.stdout) == ["1 \(topic) kept"])

            try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", topic, "-n", "-q", "1", "-r"])
            // A retained message would arrive right after the SUBACK; wait well past that.
            let second = try await MosquittoClient.run(
                MosquittoClient.sub, node: node, protocolName: protocolName, ["-t", topic, "--retained-only", "-W", "3", "-F", "MSG %r %t %p"]
            )
            #expect(MosquittoClient.messages(second.stdout).isEmpty, "cleared retained message still sent: \(second.stdout)")
        }
    }

    @Test("will: published when a mosquitto_sub is killed; on SIGTERM it sends DISCONNECT, which publishes it only in 5.0 (reason 0x04)", arguments: protocols)
    func will(protocolName: String) async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            // On SIGTERM mosquitto_sub sends DISCONNECT: plain in 3.1 / 3.1.1 (no will, [MQTT-3.1.2-10]), with
            // reason 0x04 Disconnect with Will Message in 5.0 (will, §3.14.2.1).
            for (signal, expectWill) in [(SIGKILL, true), (SIGTERM, protocolName == "mqttv5")] {
                let willTopic = "\(prefix)/will/\(signal)"
                let observer = try await MosquittoClient.subscribe(
                    node: node, protocolName: protocolName, ["-t", willTopic, "-q", "1", "-C", "1", "-W", "60", "-F", "MSG %t %p"]
                )
                let client = try await MosquittoClient.subscribe(
                    node: node, protocolName: protocolName,
                    ["-i", "\(prefix)-will-\(signal)", "-t", "\(prefix)/idle", "-W", "60", "--will-topic", willTopic, "--will-payload", "bye", "--will-qos", "1"]
                )
                client.signal(signal)
                #expect(await client.waitForExit(timeout: .seconds(15)) != nil)
                if expectWill {
                    _ = await observer.waitForExit(timeout: .seconds(20))
                } else {
                    // Long enough for a will the node should not have sent to arrive.
                    try await Task.sleep(for: .seconds(3))
                }
                let received = MosquittoClient.messages(observer)
                if expectWill {
                    #expect(received == ["\(willTopic) bye"], "no will after signal \(signal)")
                } else {
                    #expect(received.isEmpty, "will after a normal DISCONNECT: \(received)")
                }
                await observer.forceKill()
            }
        }
    }

    @Test("MQTT 5.0 properties set with mosquitto_pub -D reach mosquitto_sub unchanged")
    func propertiesV5() async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            let subscriber = try await MosquittoClient.subscribe(
                node: node, protocolName: "mqttv5", ["-t", "\(prefix)/#", "-C", "1", "-W", "20", "-F", "MSG %P|%R|%D|%C|%F|%p"]
            )
            try await MosquittoClient.publish(node: node, protocolName: "mqttv5", [
                "-t", "\(prefix)/req", "-m", "hello", "-q", "1",
                "-D", "publish", "user-property", "k1", "v1", "-D", "publish", "user-property", "k2", "v2",
                "-D", "publish", "user-property", "k1", "v3", "-D", "publish", "response-topic", "\(prefix)/resp",
                "-D", "publish", "correlation-data", "c0rr", "-D", "publish", "content-type", "text/plain",
                "-D", "publish", "payload-format-indicator", "1",
            ])
            #expect(await subscriber.waitForExit(timeout: .seconds(20)) == 0)
            #expect(MosquittoClient.messages(subscriber) == ["k1:v1 k2:v2 k1:v3|\(prefix)/resp|c0rr|text/plain|1|hello"])
        }
    }

    @Test("1,000 lines piped into mosquitto_pub -l at QoS 1 arrive at mosquitto_sub in order", arguments: ["mqttv311", "mqttv5"])
    func ordering(protocolName: String) async throws {
        try await withNode { node in
            let topic = PahoScenario.makePrefix() + "/ordered"
            let subscriber = try await MosquittoClient.subscribe(
                node: node, protocolName: protocolName, ["-t", topic, "-q", "1", "-C", "1000", "-W", "60", "-F", "MSG %p"]
            )
            let lines = (0..<1000).map(String.init)
            try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", topic, "-q", "1", "-l"], input: lines)
            #expect(await subscriber.waitForExit(timeout: .seconds(60)) == 0)
            #expect(MosquittoClient.messages(subscriber) == lines)
        }
    }

    @Test("authentication: the HMAC-SHA1 password is accepted; a wrong one refused with exit status = the CONNACK code", arguments: ["mqttv311", "mqttv5"])
    func authentication(protocolName: String) async throws {
        try await withNode(.authenticated(username: "devices", secretKey: "secret")) { node in
            let topic = PahoScenario.makePrefix() + "/auth"
            // The example of docs/auth.md.
            let accepted = try await MosquittoClient.run(
                MosquittoClient.pub, node: node, protocolName: protocolName,
                ["-i", "clientId", "-u", "devices", "-P", "bRzy/Ltu4auwF5Okbs4pi8ArMWY=", "-t", topic, "-m", "x", "-q", "1"]
            )
            #expect(accepted.status == 0, "\(accepted.stderr)")
            let refused = try await MosquittoClient.run(
                MosquittoClient.pub, node: node, protocolName: protocolName,
                ["-i", "clientId", "-u", "devices", "-P", "wrong", "-t", topic, "-m", "x", "-q", "1"]
            )
            #expect(refused.status == (protocolName == "mqttv5" ? 0x86 : 0x04), "\(refused.stderr)")
            let anonymous = try await MosquittoClient.run(
                MosquittoClient.pub, node: node, protocolName: protocolName, ["-i", "clientId", "-t", topic, "-m", "x", "-q", "1"]
            )
            #expect(anonymous.status == (protocolName == "mqttv5" ? 0x87 : 0x05), "\(anonymous.stderr)")
        }
    }

    @Test("persistent session with mosquitto_sub -c: what is published while it is away arrives when it comes back, also across SIGKILL",
          arguments: ["mqttv311", "mqttv5"], [false, true])
    func persistentSession(protocolName: String, killNode: Bool) async throws {
        try await withNode(.syncFlush) { node in
            let prefix = PahoScenario.makePrefix()
            var session = ["-c", "-i", "\(prefix)-persistent", "-t", "\(prefix)/ps/#", "-q", "1"]
            if protocolName == "mqttv5" { session += ["-x", "3600"] }
            // -E: exit once subscribed, with the session left behind.
            let subscribed = try await MosquittoClient.run(MosquittoClient.sub, node: node, protocolName: protocolName, session + ["-E"])
            #expect(subscribed.status == 0, "\(subscribed.stderr)")
            let lines = (0..<5).map(String.init)
            try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", "\(prefix)/ps/data", "-q", "1", "-l"], input: lines)
            if killNode {
                await node.kill()
                try await node.restart()
            }
            let resumed = try await MosquittoClient.run(
                MosquittoClient.sub, node: node, protocolName: protocolName, session + ["-C", "5", "-W", "20", "-F", "MSG %p"]
            )
            #expect(resumed.status == 0, "\(resumed.stderr)")
            // QoS 1: at least once, in order.
            var firstSeen: [String] = []
            for message in MosquittoClient.messages(resumed.stdout) where !firstSeen.contains(message) { firstSeen.append(message) }
            #expect(firstSeen == lines)
        }
    }

    @Test("shared subscription: two mosquitto_sub on $share/group/filter share the messages, each delivered once", arguments: ["mqttv311", "mqttv5"])
    func sharedSubscription(protocolName: String) async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            var members: [SpawnedProcess] = []
            for _ in 0..<2 {
                members.append(try await MosquittoClient.subscribe(
                    node: node, protocolName: protocolName, ["-t", "$share/group1/\(prefix)/sh/#", "-q", "1", "-W", "30", "-F", "MSG %p"]
                ))
            }
            let lines = (0..<10).map(String.init)
            try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", "\(prefix)/sh/data", "-q", "1", "-l"], input: lines)
            let deadline = ContinuousClock.now + .seconds(20)
            while members.map({ MosquittoClient.messages($0).count }).reduce(0, +) < lines.count && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            // Anything extra (a duplicate) would come soon after.
            try await Task.sleep(for: .milliseconds(500))
            for member in members { await member.forceKill() }
            let received = members.flatMap { MosquittoClient.messages($0) }
            #expect(received.sorted() == lines.sorted(), "members got \(members.map { MosquittoClient.messages($0) })")
        }
    }

    @Test("point to point: mosquitto_pub to <firstTopic>/p2p/<clientId> reaches that mosquitto_sub, whatever it subscribed to", arguments: ["mqttv311", "mqttv5"])
    func pointToPoint(protocolName: String) async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            let target = try await MosquittoClient.subscribe(
                node: node, protocolName: protocolName, ["-i", "\(prefix)-B", "-t", "\(prefix)/unrelated", "-q", "1", "-C", "1", "-W", "20", "-F", "MSG %t %p"]
            )
            try await MosquittoClient.publish(node: node, protocolName: protocolName, ["-t", "\(prefix)/p2p/\(prefix)-B", "-m", "hi B", "-q", "1"])
            #expect(await target.waitForExit(timeout: .seconds(20)) == 0)
            #expect(MosquittoClient.messages(target) == ["\(prefix)/p2p/\(prefix)-B hi B"])
        }
    }
}

/// Runs `mosquitto_pub` and `mosquitto_sub` against a `NodeProcess`.
enum MosquittoClient {
    static let pub = NodeProcess.executableOnPath("mosquitto_pub") ?? "/usr/bin/mosquitto_pub"
    static let sub = NodeProcess.executableOnPath("mosquitto_sub") ?? "/usr/bin/mosquitto_sub"
    static let stdbuf = NodeProcess.executableOnPath("stdbuf") ?? "/usr/bin/stdbuf"

    static var isAvailable: Bool {
        [pub, sub, stdbuf].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) } && NodeProcess.binaryPath != nil
    }

    /// Output lines of a `-F "MSG ..."` format, without the prefix; debug lines (`-d`) are left out.
    static func messages(_ output: String) -> [String] {
        output.split(separator: "\n").filter { $0.hasPrefix("MSG ") }.map { String($0.dropFirst(4)) }
    }

    static func messages(_ process: SpawnedProcess) -> [String] {
        messages(process.standardOutput)
    }

    private static func spawn(
        _ tool: String, node: NodeProcess, protocolName: String, _ arguments: [String], input: [String]? = nil
    ) throws -> SpawnedProcess {
        let base = node.directory + "/\((tool as NSString).lastPathComponent)-\(UUID().uuidString)"
        var inputDescriptor: Int32?
        if let input {
            try (input.joined(separator: "\n") + "\n").write(toFile: base + ".in", atomically: true, encoding: .utf8)
            inputDescriptor = open(base + ".in", O_RDONLY)
        }
        defer { if let inputDescriptor { close(inputDescriptor) } }
        let toolArguments = ["-h", "127.0.0.1", "-p", "\(node.port)", "-V", protocolName] + arguments
        // stdout to a file is block-buffered: stdbuf makes each line (a "received SUBACK", a message)
        // visible as soon as it is printed.
        return try SpawnedProcess(
            executable: stdbuf, arguments: ["-oL", tool] + toolArguments,
            environment: NodeProcess.childEnvironment(), standardOutputPath: base + ".out", standardErrorPath: base + ".err",
            standardInputDescriptor: inputDescriptor
        )
    }

    /// Runs a tool to completion (at most `timeout`) and returns its status and output.
    static func run(
        _ tool: String, node: NodeProcess, protocolName: String, _ arguments: [String], input: [String]? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try spawn(tool, node: node, protocolName: protocolName, arguments, input: input)
        guard let status = await child.waitForExit(timeout: timeout) else {
            await child.forceKill()
            throw NodeProcess.Failure("\(tool) \(arguments) did not finish within \(timeout); stderr: \(child.standardError)")
        }
        return (status, child.standardOutput, child.standardError)
    }

    /// `mosquitto_pub`, expected to succeed.
    static func publish(
        node: NodeProcess, protocolName: String, _ arguments: [String], input: [String]? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let result = try await run(pub, node: node, protocolName: protocolName, arguments, input: input)
        #expect(result.status == 0, "mosquitto_pub \(arguments) exited with \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
    }

    /// Starts `mosquitto_sub` (with `-d`) and returns once its SUBACK has arrived.
    static func subscribe(node: NodeProcess, protocolName: String, _ arguments: [String]) async throws -> SpawnedProcess {
        let child = try spawn(sub, node: node, protocolName: protocolName, ["-d"] + arguments)
        let deadline = ContinuousClock.now + .seconds(20)
        while !child.standardOutput.contains("received SUBACK") {
            guard ContinuousClock.now < deadline, child.isRunning else {
                await child.forceKill()
                throw NodeProcess.Failure("mosquitto_sub \(arguments) was not subscribed within 20 s: \(child.standardOutput) \(child.standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return child
    }
}
