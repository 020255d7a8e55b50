/// The outcome of ``AuthManager/authenticate(_:)``.
public enum AuthDecision: Sendable, Hashable {
    /// The client may connect, acting as `identity`.
    case allow(identity: AuthIdentity)
    /// The client may not connect. The gateway answers with `reason`'s CONNACK code and closes the
    /// connection; `detail` is for the server log only and is never sent to the client.
    case deny(reason: AuthDenialReason, detail: String)

    /// `true` for ``allow(identity:)``.
    public var isAllowed: Bool {
        switch self {
        case .allow: true
        case .deny: false
        }
    }

    /// The identity of an allowed client, `nil` for a denial.
    public var identity: AuthIdentity? {
        switch self {
        case .allow(let identity): identity
        case .deny: nil
        }
    }

    /// The reason of a denial, `nil` when allowed.
    public var denialReason: AuthDenialReason? {
        switch self {
        case .allow: nil
        case .deny(let reason, _): reason
        }
    }
}
