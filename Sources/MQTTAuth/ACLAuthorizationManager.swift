/// The file-based ``AuthorizationManager``: the rules of an ``ACLFile`` (`aclFile` in `service.conf`).
///
/// Semantics (see docs/auth.md):
/// - The rules about a client are those for `all`, for its user name (`user:`), for its client identifier
///   (`client:`) and, when it has no user name, for `anonymous`. They are tried in file order; the
///   **first rule that matches decides**. When none matches, the action is **denied**.
/// - PUBLISH: a rule matches when its filter matches the topic name.
/// - SUBSCRIBE: an `allow` rule matches when the requested filter lies within the rule's filter (every
///   topic the subscription could receive is one the rule names); a `deny` rule matches when the two
///   share any topic. So `deny subscribe all secret/#` also refuses a subscription to `#`.
/// - `%c` is the client identifier and `%u` the user name. A rule with `%u` does not apply to a client
///   without a user name. A client identifier or user name containing `/`, `+` or `#` would change what a
///   rule means, so for such a client an `allow` rule that substitutes it never matches and a `deny` rule
///   that substitutes it always matches.
///
/// The rules for a client are selected and compiled once per connection
/// (``authorizer(clientIdentifier:identity:)``); the rules by user and by client are indexed, so a
/// file with many users costs a dictionary lookup per CONNECT, not a scan.
public struct ACLAuthorizationManager: AuthorizationManager {
    /// Where the rules came from, for log lines (a path, or `<rules>`).
    public let source: String
    private let rulesForAll: [ACLRule]
    private let rulesForAnonymous: [ACLRule]
    private let rulesByUsername: [String: [ACLRule]]
    private let rulesByClientIdentifier: [String: [ACLRule]]

    /// The number of rules.
    public let ruleCount: Int

    /// Creates a manager over the rules of `file`.
    public init(file: ACLFile, source: String = "<rules>") {
        var forAll: [ACLRule] = []
        var forAnonymous: [ACLRule] = []
        var byUsername: [String: [ACLRule]] = [:]
        var byClientIdentifier: [String: [ACLRule]] = [:]
        for rule in file.rules {
            switch rule.subject {
            case .all: forAll.append(rule)
            case .anonymous: forAnonymous.append(rule)
            case .user(let name): byUsername[name, default: []].append(rule)
            case .client(let identifier): byClientIdentifier[identifier, default: []].append(rule)
            }
        }
        self.source = source
        self.rulesForAll = forAll
        self.rulesForAnonymous = forAnonymous
        self.rulesByUsername = byUsername
        self.rulesByClientIdentifier = byClientIdentifier
        self.ruleCount = file.rules.count
    }

    /// Loads the ACL file at `path` (off the event loops) and creates the manager.
    public static func load(path: String) async throws(ACLFileError) -> ACLAuthorizationManager {
        ACLAuthorizationManager(file: try await ACLFile.load(path: path), source: path)
    }

    public func authorizer(clientIdentifier: String, identity: AuthIdentity) -> any ClientAuthorizer {
        self.clientAuthorizer(clientIdentifier: clientIdentifier, username: identity.username)
    }

    /// The compiled rules of one client; `username` is `nil` for an anonymous client.
    public func clientAuthorizer(clientIdentifier: String, username: String?) -> ACLClientAuthorizer {
        var selected = self.rulesForAll
        if let username {
            selected += self.rulesByUsername[username] ?? []
        } else {
            selected += self.rulesForAnonymous
        }
        selected += self.rulesByClientIdentifier[clientIdentifier] ?? []
        // Each list is in file order; together they must be too: first match wins.
        selected.sort { $0.lineNumber < $1.lineNumber }
        return ACLClientAuthorizer(rules: selected, clientIdentifier: clientIdentifier, username: username, source: self.source)
    }
}
