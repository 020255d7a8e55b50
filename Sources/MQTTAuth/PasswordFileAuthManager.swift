import NIOCore

/// Checks CONNECT credentials against a users file of salted PBKDF2 hashes (see ``PasswordFileEntry``).
///
/// The file is read when the manager is created and again on ``reload()``; a reload that fails keeps the
/// users loaded before. A client is allowed when its user name is in the file and its password hashes to
/// the stored hash. The client identifier plays no part.
///
/// With `allowAnonymous` on, a CONNECT carrying neither a user name nor a password is allowed as
/// ``AuthIdentity/anonymous``; a CONNECT with credentials is still checked.
public actor PasswordFileAuthManager: AuthManager {
    /// Where the users file is read from, or `nil` for a manager created from entries in memory.
    public nonisolated let path: String?
    /// Whether a CONNECT without any credentials is allowed.
    public nonisolated let allowAnonymous: Bool
    private var passwordFile: PasswordFile

    /// An entry no user name maps to: an unknown user is checked against it, so that a refusal takes as
    /// long for an unknown user as for a known one with a wrong password and does not reveal which
    /// user names exist. Its hash is of a random password, so nothing ever matches it.
    private static let standInEntry: PasswordFileEntry = {
        var generator = SystemRandomNumberGenerator()
        let randomPassword = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        // Force-try is safe: the user name and the default iteration count are valid by construction.
        return try! PasswordFileEntry(username: "-", password: randomPassword)
    }()

    /// Loads the users file at `path` (off the event loops) and creates the manager.
    public init(path: String, allowAnonymous: Bool = false) async throws(PasswordFileError) {
        self.path = path
        self.allowAnonymous = allowAnonymous
        self.passwordFile = try await PasswordFile.load(path: path)
    }

    /// Creates a manager over users held in memory; ``reload()`` then has nothing to read and keeps them.
    public init(passwordFile: PasswordFile, allowAnonymous: Bool = false) {
        self.path = nil
        self.allowAnonymous = allowAnonymous
        self.passwordFile = passwordFile
    }

    /// Reads the users file again and, when it parses, replaces the users in one step.
    ///
    /// Connections already allowed are not affected.
    ///
    /// - Returns: the number of users now loaded.
    /// - Throws: ``PasswordFileError`` when the file cannot be read or parsed; the previous users stay.
    @discardableResult
    public func reload() async throws(PasswordFileError) -> Int {
        if let path = self.path {
            let reloaded = try await PasswordFile.load(path: path)
            self.passwordFile = reloaded
        }
        return self.passwordFile.entriesByUsername.count
    }

    /// The number of users loaded.
    public var userCount: Int {
        self.passwordFile.entriesByUsername.count
    }

    public nonisolated func authenticate(_ request: AuthRequest) async -> AuthDecision {
        if request.hasNoCredentials {
            return self.allowAnonymous
                ? .allow(identity: .anonymous)
                : .deny(reason: .notAuthorized, detail: "no credentials and anonymous access is off")
        }
        // The hashing runs outside the actor, so concurrent CONNECTs do not queue behind one another.
        let entry = await self.entry(for: request.username)
        let password = request.password ?? ByteBuffer()
        let passwordMatches = (entry ?? Self.standInEntry).matches(password: password.readableBytesView)
        guard let entry else {
            return .deny(reason: .badUsernameOrPassword, detail: "unknown user name")
        }
        guard passwordMatches, request.password != nil else {
            return .deny(reason: .badUsernameOrPassword, detail: "wrong password for user '\(entry.username)'")
        }
        return .allow(identity: AuthIdentity(username: entry.username))
    }

    private func entry(for username: String?) -> PasswordFileEntry? {
        username.flatMap { self.passwordFile.entry(for: $0) }
    }
}
