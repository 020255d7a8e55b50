/// One user of a users file: a user name and a salted PBKDF2-HMAC-SHA256 hash of the password.
///
/// On disk an entry is one line of five colon-separated fields:
///
/// ```
/// username:pbkdf2-sha256:ITERATIONS:SALT_HEX:HASH_HEX
/// ```
///
/// `HASH_HEX` is the 32-byte PBKDF2-HMAC-SHA256 of the password bytes with the salt bytes and the iteration
/// count, in hex. Any standard PBKDF2 can produce it, for example Python's
/// `hashlib.pbkdf2_hmac("sha256", password, salt, iterations)`.
public struct PasswordFileEntry: Sendable, Hashable {
    /// The name of the only algorithm the file format knows today; the field leaves room for others.
    public static let algorithmName = "pbkdf2-sha256"
    /// Iterations used by ``init(username:password:iterations:salt:)`` when none are given.
    ///
    /// A check runs once per CONNECT, so the count trades resistance to offline guessing against the CPU
    /// a flood of CONNECTs can burn; the count is stored per entry, so it can be raised later.
    public static let defaultIterations = 10_000
    /// The accepted iteration counts: at least one, and low enough that one entry cannot stall the server.
    public static let iterationLimits = 1...10_000_000
    /// Length of a random salt made by ``init(username:password:iterations:salt:)``.
    public static let defaultSaltByteCount = 16
    /// Length of the stored hash: one SHA-256 output.
    public static let hashByteCount = 32

    /// Why a line is not a valid entry.
    public struct FormatError: Error, Hashable, CustomStringConvertible {
        /// What is wrong, for example `iterations must be a number from 1 to 10000000`.
        public var reason: String
        public var description: String { self.reason }
    }

    /// The user name a client must send in CONNECT.
    public let username: String
    /// PBKDF2 iteration count.
    public let iterations: Int
    /// The salt bytes.
    public let salt: [UInt8]
    /// PBKDF2-HMAC-SHA256(password, salt, iterations), 32 bytes.
    public let hash: [UInt8]

    /// Creates an entry for `username` with `password`, hashing it now.
    ///
    /// - Parameters:
    ///   - username: no `:`, no line breaks, not empty.
    ///   - password: the password bytes (MQTT passwords are binary).
    ///   - iterations: PBKDF2 iterations, within ``iterationLimits``.
    ///   - salt: the salt; `nil` makes ``defaultSaltByteCount`` random bytes from the system's secure generator.
    public init(
        username: String,
        password: [UInt8],
        iterations: Int = PasswordFileEntry.defaultIterations,
        salt: [UInt8]? = nil
    ) throws(FormatError) {
        try Self.validate(username: username)
        try Self.validate(iterations: iterations)
        var generator = SystemRandomNumberGenerator()
        let salt = salt ?? (0..<Self.defaultSaltByteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        guard !salt.isEmpty else { throw FormatError(reason: "the salt must not be empty") }
        self.username = username
        self.iterations = iterations
        self.salt = salt
        self.hash = PBKDF2.deriveSHA256(
            password: password,
            salt: salt,
            iterations: iterations,
            keyByteCount: Self.hashByteCount
        )
    }

    /// Creates an entry for `username` with the UTF-8 bytes of `password`.
    public init(
        username: String,
        password: String,
        iterations: Int = PasswordFileEntry.defaultIterations,
        salt: [UInt8]? = nil
    ) throws(FormatError) {
        try self.init(username: username, password: Array(password.utf8), iterations: iterations, salt: salt)
    }

    /// Parses one line of a users file (without its line break).
    public init(line: Substring) throws(FormatError) {
        let fields = line.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 5 else {
            throw FormatError(
                reason: "expected 5 fields 'username:\(Self.algorithmName):iterations:salt:hash', found \(fields.count)"
            )
        }
        let username = String(fields[0])
        try Self.validate(username: username)
        guard fields[1] == Self.algorithmName else {
            throw FormatError(reason: "unknown algorithm '\(fields[1])', expected '\(Self.algorithmName)'")
        }
        guard let iterations = Int(fields[2]) else {
            throw FormatError(reason: "iterations '\(fields[2])' is not a number")
        }
        try Self.validate(iterations: iterations)
        guard let salt = Hex.decode(fields[3]), !salt.isEmpty else {
            throw FormatError(reason: "the salt is not a non-empty hex string")
        }
        guard let hash = Hex.decode(fields[4]), hash.count == Self.hashByteCount else {
            throw FormatError(reason: "the hash is not \(Self.hashByteCount) bytes of hex")
        }
        self.username = username
        self.iterations = iterations
        self.salt = salt
        self.hash = hash
    }

    /// The entry as one line of a users file, without a line break.
    public var line: String {
        "\(self.username):\(Self.algorithmName):\(self.iterations):\(Hex.encode(self.salt)):\(Hex.encode(self.hash))"
    }

    /// Whether `password` hashes to this entry's hash; the final comparison is constant-time.
    public func matches<Password: RandomAccessCollection<UInt8>>(password: Password) -> Bool {
        let derived = PBKDF2.deriveSHA256(
            password: Array(password),
            salt: self.salt,
            iterations: self.iterations,
            keyByteCount: Self.hashByteCount
        )
        return ConstantTime.isEqual(expected: self.hash, provided: derived)
    }

    private static func validate(username: String) throws(FormatError) {
        guard !username.isEmpty else { throw FormatError(reason: "the user name is empty") }
        guard !username.contains(where: { $0 == ":" || $0.isNewline }) else {
            throw FormatError(reason: "the user name '\(username)' contains ':' or a line break")
        }
    }

    private static func validate(iterations: Int) throws(FormatError) {
        guard Self.iterationLimits.contains(iterations) else {
            throw FormatError(
                reason: "iterations must be a number from \(Self.iterationLimits.lowerBound) to \(Self.iterationLimits.upperBound)"
            )
        }
    }
}
