import MQTTAuth

/// What one connection may do: who the authenticator let in, and the ACL rules compiled for that client
/// once its session is attached. Lives on the connection's event loop, in `MQTTConnectionHandler`.
struct ConnectionAccess {
    /// Set when the CONNECT is allowed.
    var identity: AuthIdentity?
    /// The client's ACL rules; `nil` when the node has no ACL (everything allowed) or before attach.
    var authorizer: (any ClientAuthorizer)?
    /// The will of this connection was denied by the ACL: it is neither stored nor published.
    var willDenied = false
}
