import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mqadmin sendMessage` and `mqadmin consumeMessage` (the operator's way to poke the store, as RocketMQ's
/// mqadmin has them) against a real standalone `mqtt-node`, with `mosquitto_pub` / `mosquitto_sub` as the
/// devices on the other side.
@Suite(
    "mqadmin sendMessage / consumeMessage with MQTT devices",
    .enabled(
        if: MosquittoClient.isAvailable && NodeProcess.adminPath != nil,
        "mosquitto_pub, mosquitto_sub, stdbuf, and a built mqtt-node and mqadmin are needed"
    ),
    .timeLimit(.minutes(3))
)
struct ServerMessagingAdminTests {
    @Test("sendMessage reaches mosquitto_sub on cmd/+ and on cmd/device-7; it prints SEND_OK with both queues; --retain keeps it")
    func sendMessageReachesDevices() async throws {
        try await withNode { node in
            let nameServer = try await node.nameServerAddress()
            let wildcard = try await MosquittoClient.subscribe(
                node: node, protocolName: "mqttv311", ["-t", "cmd/+", "-q", "1", "-C", "1", "-W", "30", "-F", "MSG %t %q %p"]
            )
            let exact = try await MosquittoClient.subscribe(
                node: node, protocolName: "mqttv5", ["-t", "cmd/device-7", "-q", "1", "-C", "1", "-W", "30", "-F", "MSG %t %q %p"]
            )
            let sent = try await node.admin(["sendMessage", "-n", nameServer, "-t", "cmd/device-7", "-p", "reboot now"])
            #expect(sent.status == 0, "stderr: \(sent.standardError)")
            let line = try #require(sent.lines.first)
            #expect(sent.lines.count == 1, "\(sent.lines)")
            #expect(line.hasPrefix("SEND_OK topic=cmd/device-7 queues="), "\(line)")
            // The topic's queue and the queue of the wildcard filter mosquitto_sub holds, first message of each.
            #expect(line.contains("%LMQ%cmd%device-7%:0"), "\(line)")
            #expect(line.contains("%LMQ%cmd%+%:0"), "\(line)")
            #expect(line.range(of: #" storeTime=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil, "\(line)")

            #expect(await wildcard.waitForExit(timeout: .seconds(30)) == 0)
            #expect(await exact.waitForExit(timeout: .seconds(30)) == 0)
            #expect(MosquittoClient.messages(wildcard) == ["cmd/device-7 1 reboot now"])
            #expect(MosquittoClient.messages(exact) == ["cmd/device-7 1 reboot now"])

            // QoS 0 and retained: a device that subscribes afterwards gets it, flagged retained.
            let retained = try await node.admin(["sendMessage", "-n", nameServer, "-t", "cmd/status", "-p", "maintenance", "-q", "0", "--retain"])
            #expect(retained.status == 0, "stderr: \(retained.standardError)")
            let late = try await MosquittoClient.run(
                MosquittoClient.sub, node: node, protocolName: "mqttv311", ["-t", "cmd/status", "-q", "1", "-C", "1", "-W", "20", "-F", "MSG %r %q %t %p"]
            )
            #expect(late.status == 0, "stderr: \(late.stderr)")
            #expect(MosquittoClient.messages(late.stdout) == ["1 0 cmd/status maintenance"])
        }
    }

    @Test("consumeMessage -g g1 -c 5 prints the 5 QoS 1 messages mosquitto_pub sent, in order, and exits 0; the group goes on from its offset")
    func consumeMessageAsGroupMember() async throws {
        try await withNode { node in
            let nameServer = try await node.nameServerAddress()
            let consumer = try await Self.startConsumer(node, ["-n", nameServer, "-t", "sensors/#", "-g", "g1", "-c", "5", "--timeout", "20"])
            for index in 0..<5 {
                try await MosquittoClient.publish(node: node, protocolName: "mqttv311", ["-t", "sensors/1/t", "-q", "1", "-m", "m\(index)"])
            }
            let status = await consumer.waitForExit(timeout: .seconds(30))
            if status == nil { await consumer.forceKill() }
            #expect(status == 0, "stderr: \(consumer.standardError)")
            let lines = Self.lines(consumer.standardOutput)
            #expect(lines.map(\.body) == (0..<5).map { "m\($0)" })
            #expect(lines.map(\.topic) == Array(repeating: "sensors/1/t", count: 5))
            #expect(lines.map(\.qos) == Array(repeating: "1", count: 5))
            // The group's queue holds nothing else: offsets 0...4.
            #expect(lines.map(\.queueOffset) == (0..<5).map { Int64($0) })
            #expect(consumer.standardError.contains("consumed 5 messages (count reached)"), "\(consumer.standardError)")

            // Published while no member runs: the group's filter registration keeps them, and its committed
            // offset wins over --from earliest (nothing acknowledged comes again).
            for index in 5..<8 {
                try await MosquittoClient.publish(node: node, protocolName: "mqttv311", ["-t", "sensors/2/t", "-q", "1", "-m", "m\(index)"])
            }
            let resumed = try await node.admin(
                ["consumeMessage", "-n", nameServer, "-t", "sensors/#", "-g", "g1", "--from", "earliest", "--timeout", "2"],
                timeout: .seconds(30)
            )
            #expect(resumed.status == 0, "stderr: \(resumed.standardError)")
            let bodies = Self.lines(resumed.standardOutput).map(\.body)
            // The acknowledgement of m4, made just before the first member left, reached the node before
            // its connection closed: nothing acknowledged comes again.
            #expect(bodies == ["m5", "m6", "m7"], "\(bodies)")
        }
    }

    @Test("consumeMessage without -g reads a topic's queue from --from; --timeout ends it; SIGTERM stops it with exit 0")
    func consumeMessageReadOnlyAndSignals() async throws {
        try await withNode { node in
            let nameServer = try await node.nameServerAddress()
            for index in 0..<3 {
                try await MosquittoClient.publish(node: node, protocolName: "mqttv5", ["-t", "meters/7/kwh", "-q", "1", "-m", "r\(index)"])
            }
            let earliest = try await node.admin(
                ["consumeMessage", "-n", nameServer, "-t", "meters/7/kwh", "--from", "earliest", "--timeout", "2"], timeout: .seconds(30)
            )
            #expect(earliest.status == 0, "stderr: \(earliest.standardError)")
            #expect(Self.lines(earliest.standardOutput).map(\.body) == ["r0", "r1", "r2"])
            #expect(earliest.standardError.contains("consumed 3 messages (no message for 2 s)"), "\(earliest.standardError)")
            // Nothing was committed: the same read again gets the same messages.
            let again = try await node.admin(
                ["consumeMessage", "-n", nameServer, "-t", "meters/7/kwh", "--from", "earliest", "-c", "3"], timeout: .seconds(30)
            )
            #expect(Self.lines(again.standardOutput).map(\.body) == ["r0", "r1", "r2"])

            // From the latest: only what comes after it started; then SIGTERM.
            let latest = try await Self.startConsumer(node, ["-n", nameServer, "-t", "meters/7/kwh"])
            try await MosquittoClient.publish(node: node, protocolName: "mqttv5", ["-t", "meters/7/kwh", "-q", "1", "-m", "r3"])
            try await waitUntil("consumeMessage printed r3", timeout: .seconds(20)) {
                Self.lines(latest.standardOutput).count >= 1
            }
            latest.signal(SIGTERM)
            let status = await latest.waitForExit(timeout: .seconds(15))
            if status == nil { await latest.forceKill() }
            #expect(status == 0, "stderr: \(latest.standardError)")
            #expect(Self.lines(latest.standardOutput).map(\.body) == ["r3"])
            #expect(latest.standardError.contains("consumed 1 message (terminated)"), "\(latest.standardError)")
        }
    }

    @Test("bad input: sendMessage to a wildcard topic and consumeMessage of a shared filter exit 1 with the reason; -q 3 is bad usage")
    func badInput() async throws {
        try await withNode { node in
            let nameServer = try await node.nameServerAddress()
            let wildcard = try await node.admin(["sendMessage", "-n", nameServer, "-t", "a/+", "-p", "x"])
            #expect(wildcard.status == 1)
            #expect(wildcard.standardOutput.isEmpty)
            #expect(wildcard.standardError.hasPrefix("mqadmin: invalid topic name 'a/+': "), "\(wildcard.standardError)")
            #expect(wildcard.standardError.split(separator: "\n").count == 1, "\(wildcard.standardError)")

            let shared = try await node.admin(["consumeMessage", "-n", nameServer, "-t", "$share/x/a", "--timeout", "5"])
            #expect(shared.status == 1)
            #expect(shared.standardError.contains("invalid topic filter '$share/x/a'"), "\(shared.standardError)")
            #expect(shared.standardError.split(separator: "\n").count == 1, "\(shared.standardError)")

            let badQoS = try await node.admin(["sendMessage", "-n", nameServer, "-t", "a/b", "-p", "x", "-q", "3"])
            #expect(badQoS.status == 64, "stderr: \(badQoS.standardError)")

            // Nothing listening where the name server should be: a one-line reason, not a hang.
            let noNameServer = try await node.admin(["sendMessage", "-n", "127.0.0.1:1", "-t", "a/b", "-p", "x", "--timeout-ms", "1000"])
            #expect(noNameServer.status == 1)
            #expect(noNameServer.standardError.hasPrefix("mqadmin: sendMessage: "), "\(noNameServer.standardError)")
            // It says why: the name server did not answer, not that no store node registered.
            #expect(noNameServer.standardError.contains("no name server of 127.0.0.1:1 answered"), "\(noNameServer.standardError)")
            #expect(noNameServer.standardError.contains("connection refused"), "\(noNameServer.standardError)")
        }
    }

    // MARK: Helpers

    /// One line of consumeMessage: `topic=T queueOffset=N qos=Q storeTime=TIME body=BODY`.
    struct ConsumedLine {
        var topic: String
        var queueOffset: Int64
        var qos: String
        var body: String
    }

    static func lines(_ output: String) -> [ConsumedLine] {
        output.split(separator: "\n").compactMap { line -> ConsumedLine? in
            guard let bodyStart = line.range(of: " body=") else { return nil }
            var fields: [String: String] = [:]
            for field in line[..<bodyStart.lowerBound].split(separator: " ") {
                let parts = field.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            guard let topic = fields["topic"], let offset = fields["queueOffset"].flatMap({ Int64($0) }), let qos = fields["qos"] else {
                return nil
            }
            return ConsumedLine(topic: topic, queueOffset: offset, qos: qos, body: String(line[bodyStart.upperBound...]))
        }
    }

    /// Starts `mqadmin consumeMessage arguments...` and returns once it says it consumes (its group and
    /// filter registered, its start offset read): what is published from then on reaches it.
    static func startConsumer(_ node: NodeProcess, _ arguments: [String]) async throws -> SpawnedProcess {
        let adminPath = try #require(NodeProcess.adminPath)
        let base = node.directory + "/consumeMessage-\(UUID().uuidString)"
        let child = try SpawnedProcess(
            executable: adminPath, arguments: ["consumeMessage"] + arguments, environment: NodeProcess.childEnvironment(),
            standardOutputPath: base + ".out", standardErrorPath: base + ".err"
        )
        let deadline = ContinuousClock.now + .seconds(20)
        while !child.standardError.contains("consuming ") {
            guard ContinuousClock.now < deadline, child.isRunning else {
                await child.forceKill()
                throw NodeProcess.Failure("consumeMessage \(arguments) did not start consuming within 20 s: \(child.standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return child
    }
}
