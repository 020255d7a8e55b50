/// Decides whether an MQTT client may connect.
///
/// The gateway calls ``authenticate(_:)`` once per CONNECT, before it answers with CONNACK. The call is
/// asynchronous so an implementation may call out (a database, an HTTP service, a file reload) without
/// blocking an event loop. Implementations must be safe to call concurrently for many connections.
///
/// The library ships ``HmacSHA1AuthManager`` (rocketmq-mqtt's scheme, the default),
/// ``PasswordFileAuthManager`` (a users file with salted PBKDF2 hashes) and ``CompositeAuthManager``
/// (tries several in order).
public protocol AuthManager: Sendable {
    /// Checks the credentials of one CONNECT.
    ///
    /// - Parameter request: what the client presented, and how it reached the server.
    /// - Returns: ``AuthDecision/allow(identity:)`` or ``AuthDecision/deny(reason:detail:)``. Denials are
    ///   answered with the MQTT code of the ``AuthDenialReason``; the detail only goes to the server log.
    func authenticate(_ request: AuthRequest) async -> AuthDecision
}
