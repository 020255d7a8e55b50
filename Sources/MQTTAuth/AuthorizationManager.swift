/// Decides what an authenticated client may publish and subscribe to (an access control list).
///
/// The check runs for every inbound PUBLISH, on the connection's event loop, so it is synchronous and
/// split in two: ``authorizer(clientIdentifier:identity:)`` runs once per connection, when the CONNECT
/// is accepted, and returns a ``ClientAuthorizer`` with the rules of that client already selected and
/// compiled (`%c` and `%u` substituted); the per-packet check is then a walk over those rules, with no
/// allocation beyond splitting the topic and no hop to another thread.
///
/// The library ships ``ACLAuthorizationManager`` (the `aclFile` of `service.conf`). With no `aclFile`,
/// the gateway checks nothing: every client may publish and subscribe to everything.
public protocol AuthorizationManager: Sendable {
    /// The rules for one connection.
    ///
    /// - Parameters:
    ///   - clientIdentifier: the client identifier the session runs under (the assigned one when the
    ///     client sent an empty identifier).
    ///   - identity: who the ``AuthManager`` let in.
    func authorizer(clientIdentifier: String, identity: AuthIdentity) -> any ClientAuthorizer
}

/// The access rules of one connection; see ``AuthorizationManager``.
public protocol ClientAuthorizer: Sendable {
    /// Whether the client may `action` on `topic`: a topic name for ``AuthorizationAction/publish``, a
    /// topic filter for ``AuthorizationAction/subscribe``. Called on an event loop: must not block.
    func authorize(_ action: AuthorizationAction, topic: String) -> AuthorizationDecision
}
