/// Asks several managers in order; the first that allows the client wins.
///
/// Use it to accept both rocketmq-mqtt's signed passwords and a users file, or to put a custom manager in
/// front of the defaults. When none allows, the first manager's denial is returned, so the primary scheme's
/// reason is what the client sees; the details of all denials are joined for the log.
public struct CompositeAuthManager: AuthManager {
    /// The managers, asked in this order.
    public let managers: [any AuthManager]

    /// Creates a composite of `managers`, which must not be empty.
    public init(_ managers: [any AuthManager]) {
        precondition(!managers.isEmpty, "a CompositeAuthManager needs at least one manager")
        self.managers = managers
    }

    public func authenticate(_ request: AuthRequest) async -> AuthDecision {
        var firstReason: AuthDenialReason?
        var details: [String] = []
        for manager in self.managers {
            let decision = await manager.authenticate(request)
            switch decision {
            case .allow:
                return decision
            case .deny(let reason, let detail):
                firstReason = firstReason ?? reason
                details.append(detail)
            }
        }
        // Force-unwrap is safe: `managers` is not empty and every one of them denied.
        return .deny(reason: firstReason!, detail: details.joined(separator: "; "))
    }
}
