import ArgumentParser
import Foundation
import MQTTCore
import NIOCore
import NIOPosix

/// Where to connect and how: shared by every subcommand.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("H"), .long], help: "Broker host.")
    var host: String = "127.0.0.1"

    @Option(name: [.customShort("p"), .long], help: "Broker MQTT port.")
    var port: Int = 1883

    @Option(name: .customLong("pub-ports"), help: "Ports of the publishers, comma-separated: publisher i connects to the (i mod n)-th (default: --port). Same host.")
    var publisherPortList: String?

    @Option(name: .customLong("sub-ports"), help: "Ports of the subscribers, comma-separated: subscriber i connects to the (i mod n)-th (default: --port). Same host.")
    var subscriberPortList: String?

    @Option(name: [.customShort("V"), .customLong("protocol")], help: "MQTT version: 3.1.1 or 5.")
    var protocolName: String = "3.1.1"

    @Option(name: .customLong("source-ips"), help: "Local addresses to connect from, round robin: ranges and lists such as 127.0.0.2-127.0.0.9,127.0.1.1. Each address has its own ~28,000 ephemeral ports.")
    var sourceIPs: String?

    @Option(help: "Event loop threads of the tool (default: the cores it may run on).")
    var threads: Int?

    @Option(name: [.customShort("u"), .long], help: "User name sent in CONNECT.")
    var username: String?

    @Option(name: [.customShort("P"), .long], help: "Password sent in CONNECT.")
    var password: String?

    @Option(name: [.customShort("k"), .customLong("keep-alive")], help: "Keep alive in seconds (0: none). PINGREQ goes out every half of it.")
    var keepAliveSeconds: UInt16 = 60

    @Option(name: .customLong("client-id-prefix"), help: "Client identifiers are <prefix>-pub-<i> / -sub-<i> / -conn-<i> (default: bench-<pid>).")
    var clientIdentifierPrefix: String?

    @Option(name: .customLong("connect-rate"), help: "New connections per second (0: as fast as --max-pending allows).")
    var connectRate: Double = 0

    @Option(name: .customLong("max-pending"), help: "Most connection handshakes in progress at once.")
    var maxPending: Int = 256

    @Option(name: .customLong("connect-timeout"), help: "Seconds for TCP connect plus CONNACK (and SUBACK).")
    var connectTimeoutSeconds: Int64 = 15

    @Option(name: .customLong("broker-pid"), help: "Read this process's VmRSS before connecting and after, and report the memory per connection.")
    var brokerPID: Int32?

    @Option(help: "Also write the JSON summary to this file (instead of standard output).")
    var json: String?

    @Option(help: "A name for this run, copied into the JSON summary.")
    var label: String?

    @Flag(name: [.customShort("Q"), .long], help: "No progress line.")
    var quiet = false

    @OptionGroup(title: "TLS") var tls: TLSOptions

    func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1-65535") }
        _ = try publisherPorts()
        _ = try subscriberPorts()
        _ = try protocolVersion()
        if let sourceIPs { _ = try sourceAddresses(sourceIPs) }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard maxPending >= 1 else { throw ValidationError("--max-pending must be at least 1") }
        guard connectRate >= 0 else { throw ValidationError("--connect-rate must not be negative") }
    }

    func protocolVersion() throws -> MQTTProtocolVersion {
        switch protocolName {
        case "3.1.1", "4", "v3.1.1": return .v3_1_1
        case "5", "5.0", "v5": return .v5
        default: throw ValidationError("--protocol must be 3.1.1 or 5")
        }
    }

    /// The ports publishers connect to, in turn: `--pub-ports`, else `--port` alone.
    func publisherPorts() throws -> [Int] {
        try Self.ports(publisherPortList, option: "--pub-ports") ?? [port]
    }

    /// The ports subscribers connect to, in turn: `--sub-ports`, else `--port` alone.
    func subscriberPorts() throws -> [Int] {
        try Self.ports(subscriberPortList, option: "--sub-ports") ?? [port]
    }

    private static func ports(_ text: String?, option: String) throws -> [Int]? {
        guard let text else { return nil }
        var ports: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard let value = Int(trimmed), (1...65_535).contains(value) else {
                throw ValidationError("\(option): '\(trimmed)' is not a port (1-65535)")
            }
            ports.append(value)
        }
        return ports
    }

    private func sourceAddresses(_ text: String) throws -> SourceAddressList {
        do {
            return try SourceAddressList(parsing: text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    var prefix: String {
        clientIdentifierPrefix ?? "bench-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// `host:port`: where `conn` connects.
    var brokerDescription: String { (tls.enabled ? "mqtts://" : "") + "\(host):\(port)" }

    /// `host:port`, or `host:p1,p2,...` when the run's publishers or subscribers connect to other ports
    /// (`--pub-ports`, `--sub-ports`): every port a client of the run connects to.
    func brokerDescription(publishers: Bool, subscribers: Bool) -> String {
        var ports: [Int] = []
        let used = (publishers ? (try? publisherPorts()) ?? [port] : []) + (subscribers ? (try? subscriberPorts()) ?? [port] : [])
        for value in used where !ports.contains(value) {
            ports.append(value)
        }
        return (tls.enabled ? "mqtts://" : "") + "\(host):" + (ports.isEmpty ? [port] : ports).map(String.init).joined(separator: ",")
    }

    func session() throws -> SessionSettings {
        SessionSettings(
            protocolVersion: try protocolVersion(),
            keepAliveSeconds: keepAliveSeconds,
            cleanStart: true,
            username: username,
            password: password,
            connectTimeout: .seconds(connectTimeoutSeconds)
        )
    }

    func makeRunner() throws -> BenchRunner {
        ProcessResources.raiseOpenFileLimit()
        return BenchRunner(threads: threads ?? System.coreCount, host: host, port: port, session: try session(), tls: try tls.makeTLS(host: host))
    }

    /// The source address of the `index`-th connection of the run, if `--source-ips` was given.
    func sourceAddress(for index: Int) throws -> SocketAddress? {
        guard let sourceIPs else { return nil }
        return try sourceAddresses(sourceIPs).address(for: index)
    }

    func sourceAddressList() throws -> SourceAddressList? {
        guard let sourceIPs else { return nil }
        return try sourceAddresses(sourceIPs)
    }

    /// Prints the summary: a human-readable block on standard error, JSON on standard output or to `--json`.
    func emit(_ summary: BenchSummary) throws {
        FileHandle.standardError.write(Data(summary.humanReadable().utf8))
        let json = summary.json() + "\n"
        if let path = self.json {
            try json.write(toFile: path, atomically: true, encoding: .utf8)
        } else {
            FileHandle.standardOutput.write(Data(json.utf8))
        }
    }
}

/// What publishers send and subscribers ask for.
struct TrafficOptions: ParsableArguments {
    @Option(name: [.customShort("q"), .long], help: "QoS of PUBLISH and SUBSCRIBE: 0, 1 or 2.")
    var qos: UInt8 = 0

    @Option(name: [.customShort("s"), .customLong("payload-size")], help: "Payload bytes (at least 24: the stamp).")
    var payloadSizeBytes: Int = 64

    @Option(name: [.customShort("r"), .long], help: "Messages per second per publisher (0: as fast as the connection takes them).")
    var rate: Double = 0

    @Option(name: .customLong("limit"), help: "Messages per publisher, then it stops (0: until --duration ends).")
    var messageLimit: UInt64 = 0

    @Option(name: [.customShort("d"), .long], help: "Seconds to publish, after the warm-up.")
    var duration: Double = 10

    @Option(help: "Seconds of publishing before measuring starts.")
    var warmup: Double = 1

    @Option(help: "Seconds to wait after publishing stops for deliveries still under way.")
    var drain: Double = 3

    @Option(help: "Most unacknowledged QoS 1 / 2 messages per publisher.")
    var inflight: Int = 100

    @Option(name: [.customShort("t"), .long], help: "Topic of publisher i; %i is replaced by i.")
    var topic: String = "bench/%i"

    @Option(name: .customLong("max-ahead"), help: "pubsub at an unlimited rate: most deliveries (messages × matching subscribers) under way at once; publishers wait for subscribers beyond it (0: no bound).")
    var maxAheadDeliveries: Int = 0

    @Flag(help: "Publish with RETAIN.")
    var retain = false

    func validate() throws {
        guard qos <= 2 else { throw ValidationError("--qos must be 0, 1 or 2") }
        guard payloadSizeBytes >= BenchPayload.stampSizeBytes else {
            throw ValidationError("--payload-size must be at least \(BenchPayload.stampSizeBytes) bytes (the send time, publisher id and sequence number)")
        }
        guard payloadSizeBytes <= 268_435_000 else { throw ValidationError("--payload-size is larger than MQTT allows") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard warmup >= 0, drain >= 0 else { throw ValidationError("--warmup and --drain must not be negative") }
        // Packet identifiers are handed out in sequence: a window well below 65,535 keeps them unique.
        guard maxAheadDeliveries >= 0 else { throw ValidationError("--max-ahead must not be negative") }
        guard (1...30_000).contains(inflight) else { throw ValidationError("--inflight must be 1-30000") }
        _ = try topicName(for: 0)
    }

    var mqttQoS: MQTTQoS { MQTTQoS(rawValue: qos) ?? .atMostOnce }

    func topicName(for index: Int) throws -> String {
        let name = topic.replacingOccurrences(of: "%i", with: String(index))
        do {
            try TopicName.validate(name)
        } catch {
            throw ValidationError("--topic \(name): \(error)")
        }
        return name
    }

    func publishSpec(publisherIndex: Int) throws -> PublishSpec {
        PublishSpec(
            publisherID: UInt32(publisherIndex),
            topicName: try topicName(for: publisherIndex),
            qos: mqttQoS,
            payloadSizeBytes: payloadSizeBytes,
            ratePerSecond: rate > 0 ? rate : nil,
            messageLimit: messageLimit > 0 ? messageLimit : nil,
            inflightLimit: inflight,
            retain: retain
        )
    }
}

/// Topic filters of subscriber i.
struct FilterOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .long], help: "Topic filter of subscriber i (repeatable); %i is replaced by i. Wildcards allowed: bench/#, bench/+.")
    var filter: [String] = ["bench/%i"]

    func filters(for index: Int) throws -> [String] {
        try filter.map { pattern in
            let text = pattern.replacingOccurrences(of: "%i", with: String(index))
            do {
                try TopicFilter.validate(text)
            } catch {
                throw ValidationError("--filter \(text): \(error)")
            }
            return text
        }
    }

    func validate() throws {
        _ = try filters(for: 0)
    }
}
