import Crypto
import NIOCore

/// Checks CONNECT credentials exactly as rocketmq-mqtt does, so its existing devices connect unchanged.
///
/// The password a client must send is derived from its client identifier:
///
/// ```
/// password = Base64( HMAC-SHA1(key: utf8(secretKey), data: utf8(clientIdentifier)) )
/// ```
///
/// with the standard Base64 alphabet and `=` padding. A client is allowed when its user name equals the
/// configured one and its password equals the derived value, compared in constant time.
///
/// With `allowAnonymous` on, a CONNECT carrying neither a user name nor a password is allowed as
/// ``AuthIdentity/anonymous``; a CONNECT that does carry credentials is still checked, and refused when
/// they are wrong.
public struct HmacSHA1AuthManager: AuthManager {
    /// The user name every client must present (`username` in `service.conf`).
    public let username: String
    /// Whether a CONNECT without any credentials is allowed.
    public let allowAnonymous: Bool
    private let usernameBytes: [UInt8]
    // Kept as bytes: `SymmetricKey` is not `Sendable`, so a key is built per check (cheap next to the HMAC).
    private let secretKeyBytes: [UInt8]

    /// Creates the manager.
    ///
    /// - Parameters:
    ///   - username: the user name every client must present.
    ///   - secretKey: the key the passwords are signed with (`secretKey` in `service.conf`).
    ///   - allowAnonymous: allow a CONNECT that has neither user name nor password.
    public init(username: String, secretKey: String, allowAnonymous: Bool = false) {
        self.username = username
        self.usernameBytes = Array(username.utf8)
        self.secretKeyBytes = Array(secretKey.utf8)
        self.allowAnonymous = allowAnonymous
    }

    /// Computes the password a client with `clientIdentifier` must send.
    ///
    /// `mqadmin signPassword` prints exactly this value.
    ///
    /// - Parameters:
    ///   - clientIdentifier: the MQTT client identifier of the device.
    ///   - secretKey: the cluster's `secretKey` from `service.conf`.
    /// - Returns: Base64 (standard alphabet, padded) of HMAC-SHA1 keyed with `secretKey` over `clientIdentifier`.
    public static func password(clientIdentifier: String, secretKey: String) -> String {
        String(
            decoding: Self.passwordBytes(clientIdentifier: clientIdentifier, secretKeyBytes: Array(secretKey.utf8)),
            as: UTF8.self
        )
    }

    /// The ASCII bytes of the password for `clientIdentifier` signed with `secretKeyBytes`.
    static func passwordBytes(clientIdentifier: String, secretKeyBytes: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: secretKeyBytes)
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(clientIdentifier.utf8), using: key)
        return Base64.encode(Array(mac))
    }

    public func authenticate(_ request: AuthRequest) async -> AuthDecision {
        self.decide(request)
    }

    /// The decision itself; synchronous because it needs no I/O.
    public func decide(_ request: AuthRequest) -> AuthDecision {
        if request.hasNoCredentials {
            return self.allowAnonymous
                ? .allow(identity: .anonymous)
                : .deny(reason: .notAuthorized, detail: "no credentials and anonymous access is off")
        }
        let expectedPassword = Self.passwordBytes(
            clientIdentifier: request.clientIdentifier,
            secretKeyBytes: self.secretKeyBytes
        )
        // Both comparisons always run, so the time taken does not tell which of the two was wrong.
        let usernameMatches = ConstantTime.isEqual(
            expected: self.usernameBytes,
            provided: Array((request.username ?? "").utf8)
        ) && request.username != nil
        let passwordMatches = ConstantTime.isEqual(
            expected: expectedPassword,
            provided: request.password?.readableBytesView ?? ByteBuffer().readableBytesView
        ) && request.password != nil
        switch (usernameMatches, passwordMatches) {
        case (true, true):
            return .allow(identity: AuthIdentity(username: self.username))
        case (false, true), (false, false):
            return .deny(reason: .badUsernameOrPassword, detail: "unknown user name")
        case (true, false):
            return .deny(reason: .badUsernameOrPassword, detail: "wrong password for client identifier")
        }
    }
}
