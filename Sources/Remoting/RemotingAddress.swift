/// A `host:port` a remoting peer listens on: `10.0.0.1:9876`, `localhost:9876`, `[::1]:9876`.
public struct RemotingAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        precondition((0...65535).contains(port), "port must be 0...65535")
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; an IPv6 host is written in brackets. Returns `nil` for anything else,
    /// including a missing or out-of-range port.
    public init?(parsing text: some StringProtocol) {
        let text = text.trimmingWhitespace()
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            // An unbracketed host with a colon is an IPv6 address missing its brackets: ambiguous.
            guard !hostPart.contains(":") else { return nil }
        }
        guard !hostPart.isEmpty, !hostPart.contains(where: { $0.isWhitespace }),
            portPart.allSatisfy(\.isASCIIDigit), portPart.count <= 5,
            let port = Int(portPart), (1...65535).contains(port)
        else { return nil }
        self.init(host: String(hostPart), port: port)
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> Substring {
        let trimmedStart = drop(while: { $0.isWhitespace })
        var end = trimmedStart.endIndex
        while end > trimmedStart.startIndex, trimmedStart[trimmedStart.index(before: end)].isWhitespace {
            end = trimmedStart.index(before: end)
        }
        return Substring(trimmedStart[..<end])
    }
}
