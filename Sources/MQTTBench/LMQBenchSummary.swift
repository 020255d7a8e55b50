import Foundation

/// The summary of an `lmq-pub` or `lmq-sub` run: every field of ``BenchSummary`` (the same JSON shape as
/// the other scenarios) and the figures of the server-side clients next to them.
struct LMQBenchSummary: Encodable, Sendable {
    var base: BenchSummary
    var server: ServerSide

    /// What only a run with server-side producers or consumers has.
    struct ServerSide: Codable, Sendable {
        /// `lmq-pub` (producers → MQTT subscribers) or `lmq-sub` (MQTT publishers → a consumer group).
        var direction: String
        /// Where the clients found the store.
        var nameServers: String
        /// `lmq-pub`: producers; `lmq-sub`: members of the consumer group.
        var clients: Int
        /// Seconds until every producer or consumer had started (found and connected to the store node).
        var startSeconds: Double
        /// `lmq-pub`: sends in flight per producer. `lmq-sub`: messages a member holds unacknowledged.
        var window: Int
        /// `lmq-sub`: the consumer group (clustering mode) and its subscription.
        var group: String?
        var subscription: String?
        /// `lmq-pub`: sends that failed (counted neither as acknowledged nor as expected deliveries).
        var sendFailures: UInt64?
        /// `lmq-pub`: from the call of `send` to its return (the store node said it is durable), over
        /// the measured window.
        var sendLatencyMillis: PercentileSummary?
    }

    private enum ServerKey: String, CodingKey {
        case server
    }

    func encode(to encoder: any Encoder) throws {
        // The base fields at the top level, as every other scenario writes them, and one more key.
        try base.encode(to: encoder)
        var container = encoder.container(keyedBy: ServerKey.self)
        try container.encode(server, forKey: .server)
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "{}" }
        return text
    }

    /// The base summary's lines and the server side's.
    func humanReadable() -> String {
        var text = base.humanReadable()
        var line = "  server side  \(server.clients) \(server.direction == "lmq-pub" ? "producer(s)" : "consumer(s)") via name server \(server.nameServers), "
            + "started in " + String(format: "%.2f s", server.startSeconds)
        if let group = server.group, let subscription = server.subscription { line += ", group \(group) on \(subscription)" }
        if let sendFailures = server.sendFailures, sendFailures > 0 { line += ", send failures \(Format.count(sendFailures))" }
        text += line + "\n"
        if let latency = server.sendLatencyMillis, latency.count > 0 {
            text += "  send→durable " + latency.line + " (mean \(Format.millis(latency.mean)))\n"
        }
        return text
    }

    /// Prints the human-readable block on standard error, JSON on standard output or to `--json`.
    func emit(json path: String?) throws {
        FileHandle.standardError.write(Data(humanReadable().utf8))
        let json = self.json() + "\n"
        if let path {
            try json.write(toFile: path, atomically: true, encoding: .utf8)
        } else {
            FileHandle.standardOutput.write(Data(json.utf8))
        }
    }
}
