/// The outcome of ``ClientAuthorizer/authorize(_:topic:)``.
public enum AuthorizationDecision: Sendable, Hashable {
    /// The client may do it.
    case allow
    /// The client may not; `rule` names what denied it (for example `acl.conf line 7: deny publish all
    /// secret/#`) for the server log. It is never sent to the client.
    case deny(rule: String)

    /// `true` for ``allow``.
    public var isAllowed: Bool {
        switch self {
        case .allow: true
        case .deny: false
        }
    }
}
