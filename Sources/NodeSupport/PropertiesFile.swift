/// The subset of Java's `.properties` format that the `conf/` files use: one `key=value` (or `key:value`)
/// per line, `#` and `!` start comment lines, whitespace around keys and values is dropped, a line
/// ending in `\` continues on the next one. Later lines override earlier ones.
public struct PropertiesFile: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: String
        /// Where the entry starts, 1-based, for error messages.
        public var line: Int
    }

    /// The entries, in the order their keys first appear.
    public private(set) var entries: [Entry] = []

    /// Why a line is not a property.
    public struct SyntaxError: Error, Hashable, CustomStringConvertible {
        public var line: Int
        public var text: String
        public var description: String { "line \(line): expected key=value, found \"\(text)\"" }
    }

    public init(parsing text: String) throws(SyntaxError) {
        var pending = ""
        var pendingStart = 0
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let trimmed = line.trimmed()
            if pending.isEmpty {
                pendingStart = offset + 1
                if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("!") { continue }
            }
            if trimmed.hasSuffix("\\") {
                pending += trimmed.dropLast()
                continue
            }
            pending += trimmed
            let logical = pending
            pending = ""
            guard let separator = logical.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw SyntaxError(line: pendingStart, text: logical)
            }
            let key = String(logical[..<separator].trimmed())
            let value = String(logical[logical.index(after: separator)...].trimmed())
            guard !key.isEmpty else { throw SyntaxError(line: pendingStart, text: logical) }
            if let existing = entries.firstIndex(where: { $0.key == key }) {
                entries[existing] = Entry(key: key, value: value, line: pendingStart)
            } else {
                entries.append(Entry(key: key, value: value, line: pendingStart))
            }
        }
        if !pending.isEmpty {
            throw SyntaxError(line: pendingStart, text: pending)
        }
    }

    public subscript(key: String) -> Entry? {
        entries.first { $0.key == key }
    }

    public var keys: [String] { entries.map(\.key) }

    /// Every key with its value.
    public var dictionary: [String: String] {
        Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace.
    public func trimmed() -> SubSequence {
        var start = startIndex
        while start < endIndex, self[start].isWhitespace { start = index(after: start) }
        var end = endIndex
        while end > start, self[index(before: end)].isWhitespace { end = index(before: end) }
        return self[start..<end]
    }
}
