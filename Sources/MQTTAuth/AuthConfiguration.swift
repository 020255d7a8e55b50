/// Which authentication the gateway uses, read from `service.conf`.
///
/// Keys (as in rocketmq-mqtt, plus one of our own):
///
/// | key | meaning |
/// |---|---|
/// | `username` | the user name every device sends (rocketmq-mqtt scheme) |
/// | `secretKey` | the key device passwords are signed with (rocketmq-mqtt scheme) |
/// | `allowAnonymous` | `true` or `false` (the default when absent): allow a CONNECT with neither user name nor password |
/// | `authPasswordFile` | path of a users file of salted hashes (``PasswordFileEntry``) |
/// | `aclFile` | path of an ACL file (``ACLFile``); none means every client may publish and subscribe to everything |
///
/// `username` and `secretKey` go together. An empty value counts as not set. At least one scheme must be
/// configured, unless `allowAnonymous=true`, in which case only anonymous clients get in.
public struct AuthConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The `service.conf` keys this type reads.
    public enum Key {
        public static let username = "username"
        public static let secretKey = "secretKey"
        public static let allowAnonymous = "allowAnonymous"
        public static let passwordFile = "authPasswordFile"
        public static let aclFile = "aclFile"
    }

    /// `allowAnonymous` when the key is absent or empty: off, so a configuration that forgets the key
    /// does not open the gateway. (The shipped `conf/service.conf` sets it to `true` explicitly.)
    public static let defaultAllowAnonymous = false

    /// The user name and secret key of rocketmq-mqtt's signed-password scheme, when configured.
    public var signedPassword: (username: String, secretKey: String)? {
        guard let username = self.username, let secretKey = self.secretKey else { return nil }
        return (username, secretKey)
    }

    /// `username`; set exactly when ``secretKey`` is.
    public let username: String?
    /// `secretKey`; set exactly when ``username`` is. Never printed by ``description``.
    public let secretKey: String?
    /// `allowAnonymous`.
    public let allowAnonymous: Bool
    /// `authPasswordFile`.
    public let passwordFilePath: String?
    /// `aclFile`: the access rules, or `nil` for none (everything allowed).
    public let aclFilePath: String?

    /// Creates a configuration, checking that it makes sense.
    ///
    /// - Throws: ``AuthConfigurationError`` when only one of `username` and `secretKey` is set, or when
    ///   nothing is configured and anonymous access is off.
    public init(
        username: String? = nil,
        secretKey: String? = nil,
        allowAnonymous: Bool = false,
        passwordFilePath: String? = nil,
        aclFilePath: String? = nil
    ) throws(AuthConfigurationError) {
        let username = username.flatMap { $0.isEmpty ? nil : $0 }
        let secretKey = secretKey.flatMap { $0.isEmpty ? nil : $0 }
        let passwordFilePath = passwordFilePath.flatMap { $0.isEmpty ? nil : $0 }
        switch (username, secretKey) {
        case (.some, .none):
            throw .missingKey(Key.secretKey, neededBecause: "'\(Key.username)' is set")
        case (.none, .some):
            throw .missingKey(Key.username, neededBecause: "'\(Key.secretKey)' is set")
        case (.some, .some), (.none, .none):
            break
        }
        if username == nil && passwordFilePath == nil && !allowAnonymous {
            throw .nothingConfigured
        }
        self.username = username
        self.secretKey = secretKey
        self.allowAnonymous = allowAnonymous
        self.passwordFilePath = passwordFilePath
        self.aclFilePath = aclFilePath.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Reads the configuration from the parsed key/value pairs of `service.conf`; other keys are ignored.
    public init(properties: [String: String]) throws(AuthConfigurationError) {
        let allowAnonymous: Bool
        switch properties[Key.allowAnonymous]?.trimmingASCIIWhitespace().lowercased() {
        case nil, "": allowAnonymous = Self.defaultAllowAnonymous
        case "true": allowAnonymous = true
        case "false": allowAnonymous = false
        case .some(let other):
            throw .invalidValue(key: Key.allowAnonymous, value: other, expected: "true or false")
        }
        try self.init(
            username: properties[Key.username],
            secretKey: properties[Key.secretKey],
            allowAnonymous: allowAnonymous,
            passwordFilePath: properties[Key.passwordFile]?.trimmingASCIIWhitespace(),
            aclFilePath: properties[Key.aclFile]?.trimmingASCIIWhitespace()
        )
    }

    /// Builds the manager this configuration describes.
    ///
    /// - signed passwords only: ``HmacSHA1AuthManager``;
    /// - users file only: ``PasswordFileAuthManager`` (the file is read now);
    /// - both: a ``CompositeAuthManager`` asking the signed-password scheme first;
    /// - neither (anonymous only): a ``PasswordFileAuthManager`` with no users.
    ///
    /// - Throws: ``PasswordFileError`` when the users file cannot be read or parsed.
    public func makeAuthManager() async throws(PasswordFileError) -> any AuthManager {
        var managers: [any AuthManager] = []
        if let (username, secretKey) = self.signedPassword {
            managers.append(
                HmacSHA1AuthManager(username: username, secretKey: secretKey, allowAnonymous: self.allowAnonymous)
            )
        }
        if let path = self.passwordFilePath {
            managers.append(try await PasswordFileAuthManager(path: path, allowAnonymous: self.allowAnonymous))
        }
        switch managers.count {
        case 0:
            // Only reachable with allowAnonymous=true (the initializer refuses otherwise).
            // Force-try is safe: an empty list has no duplicate user names.
            return PasswordFileAuthManager(passwordFile: try! PasswordFile(entries: []), allowAnonymous: true)
        case 1:
            return managers[0]
        default:
            return CompositeAuthManager(managers)
        }
    }

    /// Builds the ``ACLAuthorizationManager`` of `aclFile` (the file is read now), or `nil` when no ACL
    /// file is configured and everything is allowed.
    ///
    /// - Throws: ``ACLFileError`` when the file cannot be read or parsed.
    public func makeAuthorizationManager() async throws(ACLFileError) -> (any AuthorizationManager)? {
        guard let path = self.aclFilePath else { return nil }
        return try await ACLAuthorizationManager.load(path: path)
    }

    public var description: String {
        var parts: [String] = []
        if let username = self.username {
            parts.append("signed passwords for user '\(username)' (secretKey set)")
        }
        if let path = self.passwordFilePath {
            parts.append("users file \(path)")
        }
        parts.append("allowAnonymous=\(self.allowAnonymous)")
        if let path = self.aclFilePath {
            parts.append("ACL file \(path)")
        }
        return parts.joined(separator: ", ")
    }
}

extension String {
    fileprivate func trimmingASCIIWhitespace() -> String {
        let isWhitespace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(self.drop(while: isWhitespace).reversed().drop(while: isWhitespace).reversed())
    }
}
