extension BenchSummary {
    /// The summary as a few lines for a person, printed on standard error.
    func humanReadable() -> String {
        var lines: [String] = []
        var title = "mqtt-bench \(scenario) against \(broker), MQTT \(protocolVersion)"
        if let label { title += " [\(label)]" }
        if let qos, let payloadSizeBytes { title += ", QoS \(qos), \(payloadSizeBytes) B payloads" }
        if publishers > 0 || subscribers > 0 { title += ", \(publishers) pub / \(subscribers) sub" }
        if let ratePerPublisher { title += ", \(Format.count(ratePerPublisher)) msg/s per publisher" }
        lines.append(title)
        lines.append(
            "  connections  \(Format.count(connect.connected)) of \(Format.count(connect.attempted)) in "
                + String(format: "%.2f s", connect.elapsedSeconds) + " (\(Format.count(connect.ratePerSecond))/s), failed \(Format.count(connect.failed)); "
                + "connect " + connect.latencyMillis.line
        )
        for reason in connect.failureReasons { lines.append("    failure: \(reason)") }
        if let published, let publishRatePerSecond {
            var line = "  published    \(Format.count(published)), \(Format.count(publishRatePerSecond)) msg/s over " + String(format: "%.1f s", durationSeconds)
            if let acknowledged { line += ", acknowledged \(Format.count(acknowledged))" }
            lines.append(line)
        }
        if let received, let receiveRatePerSecond {
            var line = "  received     \(Format.count(received)), \(Format.count(receiveRatePerSecond)) msg/s"
            if let expected { line += ", expected \(Format.count(expected))" }
            if let lost { line += ", lost \(Format.count(lost))" }
            if let duplicates { line += ", duplicates \(Format.count(duplicates))" }
            if let reordered { line += ", reordered \(Format.count(reordered))" }
            if let foreign, foreign > 0 { line += ", foreign \(Format.count(foreign))" }
            lines.append(line)
        }
        if let latencyMillis, latencyMillis.count > 0 {
            lines.append("  latency      " + latencyMillis.line + " (mean \(Format.millis(latencyMillis.mean)))")
        }
        if unexpectedCloses > 0 { lines.append("  closed by the broker: \(Format.count(unexpectedCloses))") }
        if let brokerMemory {
            var line = "  broker RSS   \(Format.count(brokerMemory.rssBeforeBytes / 1024)) KiB -> \(Format.count(brokerMemory.rssAfterBytes / 1024)) KiB"
            if let perConnection = brokerMemory.bytesPerConnection { line += ", \(Format.count(perConnection)) B per connection" }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
