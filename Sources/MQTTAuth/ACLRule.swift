/// One line of an ACL file: `<allow|deny> <publish|subscribe|both> <who> <topic filter>`.
///
/// `who` is `all`, `anonymous` (clients without a user name), `user:<name>` or `client:<id>`. The topic
/// filter is the rest of the line (it may contain spaces) and may use `+` and `#` as MQTT filters do,
/// and `%c` (client identifier) and `%u` (user name), substituted per connection. See docs/auth.md.
public struct ACLRule: Sendable, Hashable, CustomStringConvertible {
    /// Whether a matching rule allows or denies.
    public enum Permission: String, Sendable, Hashable {
        case allow
        case deny
    }

    /// Which actions a rule is about.
    public enum Access: String, Sendable, Hashable {
        case publish
        case subscribe
        case both

        /// `true` when a rule with this access is about `action`.
        public func covers(_ action: AuthorizationAction) -> Bool {
            switch (self, action) {
            case (.both, _), (.publish, .publish), (.subscribe, .subscribe): true
            case (.publish, .subscribe), (.subscribe, .publish): false
            }
        }
    }

    /// Which clients a rule is about.
    public enum Subject: Sendable, Hashable, CustomStringConvertible {
        /// Every client.
        case all
        /// Clients admitted without a user name (``AuthIdentity/anonymous``).
        case anonymous
        /// Clients authenticated as this user name.
        case user(String)
        /// The client with this client identifier.
        case client(String)

        public var description: String {
            switch self {
            case .all: "all"
            case .anonymous: "anonymous"
            case .user(let name): "user:\(name)"
            case .client(let identifier): "client:\(identifier)"
            }
        }
    }

    public var permission: Permission
    public var access: Access
    public var subject: Subject
    /// The topic filter as written, `%c` and `%u` not yet substituted.
    public var topicFilter: String
    /// The line of the file the rule is on (1-based); rules are tried in this order.
    public var lineNumber: Int

    /// Creates a rule, checking the topic filter.
    ///
    /// - Throws: a description of what is wrong with `topicFilter`.
    public init(permission: Permission, access: Access, subject: Subject, topicFilter: String, lineNumber: Int) throws(ACLRuleError) {
        try Self.validate(topicFilter: topicFilter)
        self.permission = permission
        self.access = access
        self.subject = subject
        self.topicFilter = topicFilter
        self.lineNumber = lineNumber
    }

    /// Parses one non-comment line.
    public init(line: Substring, lineNumber: Int) throws(ACLRuleError) {
        var rest = line.drop(while: Self.isBlank)
        func nextWord() -> Substring {
            let word = rest.prefix(while: { !Self.isBlank($0) })
            rest = rest.dropFirst(word.count).drop(while: Self.isBlank)
            return word
        }
        let permissionWord = nextWord()
        guard let permission = Permission(rawValue: String(permissionWord)) else {
            throw ACLRuleError("expected 'allow' or 'deny', found '\(permissionWord)'")
        }
        let accessWord = nextWord()
        guard let access = Access(rawValue: String(accessWord)) else {
            throw ACLRuleError("expected 'publish', 'subscribe' or 'both', found '\(accessWord)'")
        }
        let subjectWord = nextWord()
        let subject: Subject
        if subjectWord == "all" {
            subject = .all
        } else if subjectWord == "anonymous" {
            subject = .anonymous
        } else if subjectWord.hasPrefix("user:"), subjectWord.count > 5 {
            subject = .user(String(subjectWord.dropFirst(5)))
        } else if subjectWord.hasPrefix("client:"), subjectWord.count > 7 {
            subject = .client(String(subjectWord.dropFirst(7)))
        } else {
            throw ACLRuleError("expected 'all', 'anonymous', 'user:<name>' or 'client:<id>', found '\(subjectWord)'")
        }
        // The topic filter is the rest of the line: topics may contain spaces, not at either end.
        var filter = rest
        while let last = filter.last, Self.isBlank(last) { filter = filter.dropLast() }
        guard !filter.isEmpty else { throw ACLRuleError("a topic filter is missing") }
        try self.init(permission: permission, access: access, subject: subject, topicFilter: String(filter), lineNumber: lineNumber)
    }

    /// The rule as a line of an ACL file.
    public var line: String {
        "\(permission.rawValue) \(access.rawValue) \(subject) \(topicFilter)"
    }

    public var description: String {
        "line \(lineNumber): \(line)"
    }

    private static func isBlank(_ character: Character) -> Bool {
        character == " " || character == "\t" || character == "\r"
    }

    /// A filter as MQTT has them (§4.7.1): `#` alone and last, `+` alone in its level, no NUL.
    private static func validate(topicFilter: String) throws(ACLRuleError) {
        guard !topicFilter.isEmpty else { throw ACLRuleError("a topic filter is missing") }
        guard !topicFilter.utf8.contains(0) else { throw ACLRuleError("the topic filter contains U+0000") }
        let levels = topicFilter.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.contains("#") && (level != "#" || index != levels.count - 1) {
                throw ACLRuleError("'#' must be a whole level and the last one, in '\(topicFilter)'")
            }
            if level.contains("+") && level != "+" {
                throw ACLRuleError("'+' must be a whole level, in '\(topicFilter)'")
            }
        }
    }
}
