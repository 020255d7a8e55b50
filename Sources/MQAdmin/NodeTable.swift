import NameServer

/// Prints `rows` under `header` in left-aligned columns two spaces apart; an empty cell prints as `-`.
func printTable(header: [String], rows: [[String]]) {
    let cells = [header] + rows.map { $0.map { $0.isEmpty ? "-" : $0 } }
    let widths = header.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
    for row in cells {
        let padded = row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
        }
        print(padded.joined(separator: "  "))
    }
}

/// `1.2s ago`.
func heartbeatAge(_ status: NodeStatus) -> String {
    formatAge(milliseconds: status.lastHeartbeatAgeMilliseconds) + " ago"
}

/// `3m 5s ago`.
func uptime(_ status: NodeStatus) -> String {
    formatAge(milliseconds: status.registeredAgeMilliseconds) + " ago"
}

func formatAge(milliseconds: Int64) -> String {
    if milliseconds < 10_000 {
        return "\(milliseconds / 1_000).\(milliseconds % 1_000 / 100)s"
    }
    let seconds = milliseconds / 1_000
    if seconds < 3_600 {
        return seconds < 60 ? "\(seconds)s" : "\(seconds / 60)m \(seconds % 60)s"
    }
    return "\(seconds / 3_600)h \(seconds % 3_600 / 60)m"
}
