/// Who an allowed client is, as far as authorization later cares.
public struct AuthIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The authenticated user name, or `nil` for an anonymous client.
    public var username: String?

    /// Creates an identity for an authenticated user.
    public init(username: String) {
        self.username = username
    }

    private init(anonymous: Void) {
        self.username = nil
    }

    /// A client admitted by `allowAnonymous` without credentials.
    public static let anonymous = AuthIdentity(anonymous: ())

    /// `true` when the client presented no credentials.
    public var isAnonymous: Bool { self.username == nil }

    public var description: String {
        self.username.map { "user '\($0)'" } ?? "anonymous"
    }
}
