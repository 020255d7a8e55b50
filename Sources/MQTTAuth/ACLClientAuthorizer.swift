/// The ACL rules of one connection, with `%c` and `%u` substituted and filters split into levels once.
///
/// Made by ``ACLAuthorizationManager/clientAuthorizer(clientIdentifier:username:)``; see there for the
/// semantics. A check walks the client's rules in file order and stops at the first match.
public struct ACLClientAuthorizer: ClientAuthorizer {
    struct CompiledRule: Sendable {
        var permission: ACLRule.Permission
        var access: ACLRule.Access
        /// The filter's levels after substitution; `nil` when a substituted value contains `/`, `+` or `#`.
        var levels: [Substring]?
        var description: String
    }

    let rules: [CompiledRule]

    /// The number of rules that apply to this client.
    public var ruleCount: Int { rules.count }

    init(rules: [ACLRule], clientIdentifier: String, username: String?, source: String) {
        var compiled: [CompiledRule] = []
        compiled.reserveCapacity(rules.count)
        for rule in rules {
            let usesUsername = rule.topicFilter.contains("%u")
            // A rule about the user name says nothing about a client that has none.
            if usesUsername && username == nil { continue }
            let substitutesClient = rule.topicFilter.contains("%c")
            // A value with a level separator or a wildcard would change what the rule names.
            let unsafe = (substitutesClient && Self.hasReservedCharacter(clientIdentifier))
                || (usesUsername && Self.hasReservedCharacter(username ?? ""))
            let filter = Self.substitute(rule.topicFilter, clientIdentifier: clientIdentifier, username: username)
            let levels = unsafe ? nil : filter.split(separator: "/", omittingEmptySubsequences: false)
            compiled.append(CompiledRule(
                permission: rule.permission, access: rule.access, levels: levels, description: "\(source) \(rule.description)"
            ))
        }
        self.rules = compiled
    }

    private static func hasReservedCharacter(_ value: String) -> Bool {
        value.contains { $0 == "/" || $0 == "+" || $0 == "#" }
    }

    /// `filter` with `%c` and `%u` replaced in one pass (a client identifier containing `%u` stays as it is).
    static func substitute(_ filter: String, clientIdentifier: String, username: String?) -> String {
        guard filter.contains("%") else { return filter }
        var result = ""
        var characters = filter.makeIterator()
        while let character = characters.next() {
            guard character == "%" else {
                result.append(character)
                continue
            }
            switch characters.next() {
            case "c": result += clientIdentifier
            case "u" where username != nil: result += username ?? ""
            case let other?: result.append("%"); result.append(other)
            case nil: result.append("%")
            }
        }
        return result
    }

    public func authorize(_ action: AuthorizationAction, topic: String) -> AuthorizationDecision {
        var levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        if action == .subscribe, levels.count > 2, levels[0] == "$share" {
            // A shared subscription receives what its filter after `$share/{ShareName}/` names.
            levels.removeFirst(2)
        }
        for rule in rules where rule.access.covers(action) {
            guard let ruleLevels = rule.levels else {
                // The substituted value would change what the rule names: an allow never matches, a deny always does.
                switch rule.permission {
                case .allow: continue
                case .deny: return .deny(rule: "\(rule.description) (the client identifier or user name contains '/', '+' or '#')")
                }
            }
            let isDeny = rule.permission == .deny
            let matched: Bool
            switch action {
            case .publish:
                matched = ACLTopicMatcher.matches(rule: ruleLevels, topic: levels, wildcardsMatchDollarTopics: isDeny)
            case .subscribe:
                matched = isDeny
                    ? ACLTopicMatcher.overlaps(rule: ruleLevels, requested: levels, wildcardsMatchDollarTopics: true)
                    : ACLTopicMatcher.covers(rule: ruleLevels, requested: levels, wildcardsMatchDollarTopics: false)
            }
            guard matched else { continue }
            switch rule.permission {
            case .allow: return .allow
            case .deny: return .deny(rule: rule.description)
            }
        }
        return .deny(rule: "no rule matched (the default is deny)")
    }
}
