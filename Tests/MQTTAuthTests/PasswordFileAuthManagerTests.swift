import Foundation
import MQTTAuth
import NIOCore
import Testing

@Suite("Users file of salted PBKDF2 hashes")
struct PasswordFileAuthManagerTests {
    /// Produced outside this code with Python:
    /// `hashlib.pbkdf2_hmac("sha256", b"hunter2", bytes.fromhex("00112233445566778899aabbccddeeff"), 1000).hex()`
    static let externallyMadeLine =
        "alice:pbkdf2-sha256:1000:00112233445566778899aabbccddeeff:7565f4d66ef6cfaafc300808e5b75c36c3201244948697acfbd349ae21c10d63"

    /// Low iteration counts keep the tests fast; the count is stored per entry, so this is no shortcut.
    static let testIterations = 50

    /// A fresh directory under the system's temporary directory, removed by the caller.
    private static func makeDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mqtt-auth-tests-\(UInt64.random(in: .min ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private static func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
    }

    private static func request(username: String?, password: String?) -> AuthRequest {
        AuthRequest(clientIdentifier: "any-client", username: username, passwordBytes: password.map { Array($0.utf8) })
    }

    @Test("an entry made by another PBKDF2 implementation parses and verifies")
    func externallyMadeEntry() throws {
        let entry = try PasswordFileEntry(line: Self.externallyMadeLine[...])
        #expect(entry.username == "alice")
        #expect(entry.iterations == 1000)
        #expect(entry.matches(password: Array("hunter2".utf8)))
        #expect(!entry.matches(password: Array("hunter3".utf8)))
        #expect(entry.line == Self.externallyMadeLine)
    }

    @Test("creating an entry with a given salt reproduces the external hash")
    func createdEntryMatchesExternalHash() throws {
        let entry = try PasswordFileEntry(
            username: "alice",
            password: "hunter2",
            iterations: 1000,
            salt: [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]
        )
        #expect(entry.line == Self.externallyMadeLine)
    }

    @Test("created entries get a fresh random salt, so equal passwords hash differently")
    func randomSalt() throws {
        let first = try PasswordFileEntry(username: "bob", password: "same", iterations: Self.testIterations)
        let second = try PasswordFileEntry(username: "bob", password: "same", iterations: Self.testIterations)
        #expect(first.salt.count == PasswordFileEntry.defaultSaltByteCount)
        #expect(first.salt != second.salt)
        #expect(first.hash != second.hash)
        #expect(first.matches(password: Array("same".utf8)) && second.matches(password: Array("same".utf8)))
        #expect(try PasswordFileEntry(line: first.line[...]) == first)
    }

    @Test("binary passwords that are not UTF-8 work")
    func binaryPassword() throws {
        let password: [UInt8] = [0xFF, 0x00, 0xFE, 0xC3, 0x28]
        let entry = try PasswordFileEntry(username: "sensor", password: password, iterations: Self.testIterations)
        #expect(entry.matches(password: password))
        #expect(!entry.matches(password: password.dropLast()))
        #expect(!entry.matches(password: [UInt8]()))
    }

    @Test("a users file on disk: right password allowed; wrong password, unknown user, no password refused")
    func authenticateFromFile() async throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("users")
        let carol = try PasswordFileEntry(username: "carol", password: "correct horse", iterations: Self.testIterations)
        try Self.write("# users\n\n\(Self.externallyMadeLine)\r\n  \n\(carol.line)\n", to: file)

        let manager = try await PasswordFileAuthManager(path: file.path)
        #expect(await manager.userCount == 2)

        let alice = await manager.authenticate(Self.request(username: "alice", password: "hunter2"))
        #expect(alice.identity == AuthIdentity(username: "alice"))
        let carolAllowed = await manager.authenticate(Self.request(username: "carol", password: "correct horse"))
        #expect(carolAllowed.identity == AuthIdentity(username: "carol"))

        let wrongPassword = await manager.authenticate(Self.request(username: "carol", password: "hunter2"))
        #expect(wrongPassword.denialReason == .badUsernameOrPassword)
        let unknownUser = await manager.authenticate(Self.request(username: "mallory", password: "hunter2"))
        #expect(unknownUser.denialReason == .badUsernameOrPassword)
        let noPassword = await manager.authenticate(Self.request(username: "alice", password: nil))
        #expect(noPassword.denialReason == .badUsernameOrPassword)
        let caseDiffers = await manager.authenticate(Self.request(username: "Alice", password: "hunter2"))
        #expect(caseDiffers.denialReason == .badUsernameOrPassword)
        let anonymous = await manager.authenticate(Self.request(username: nil, password: nil))
        #expect(anonymous.denialReason == .notAuthorized)
    }

    @Test("anonymous on: no credentials allowed, credentials still checked")
    func anonymousOn() async throws {
        let entry = try PasswordFileEntry(username: "dave", password: "pw", iterations: Self.testIterations)
        let manager = PasswordFileAuthManager(passwordFile: try PasswordFile(entries: [entry]), allowAnonymous: true)
        #expect(await manager.authenticate(Self.request(username: nil, password: nil)).identity == .anonymous)
        #expect(await manager.authenticate(Self.request(username: "dave", password: "bad")).denialReason == .badUsernameOrPassword)
        #expect(await manager.authenticate(Self.request(username: "eve", password: "pw")).denialReason == .badUsernameOrPassword)
        #expect(await manager.authenticate(Self.request(username: "dave", password: "pw")).identity == AuthIdentity(username: "dave"))
    }

    @Test(
        "malformed lines are refused with the line number and a clear reason",
        arguments: [
            ("alice:hunter2", "expected 5 fields"),
            ("alice:pbkdf2-sha256:1000:0011:", "hash is not 32 bytes"),
            ("alice:md5:1000:0011:" + String(repeating: "00", count: 32), "unknown algorithm 'md5'"),
            ("alice:pbkdf2-sha256:many:0011:" + String(repeating: "00", count: 32), "iterations 'many' is not a number"),
            ("alice:pbkdf2-sha256:0:0011:" + String(repeating: "00", count: 32), "iterations must be a number from 1"),
            ("alice:pbkdf2-sha256:99999999:0011:" + String(repeating: "00", count: 32), "iterations must be a number from 1"),
            ("alice:pbkdf2-sha256:1000:xyz:" + String(repeating: "00", count: 32), "salt is not a non-empty hex string"),
            ("alice:pbkdf2-sha256:1000::" + String(repeating: "00", count: 32), "salt is not a non-empty hex string"),
            (":pbkdf2-sha256:1000:0011:" + String(repeating: "00", count: 32), "user name is empty"),
            ("a:b:pbkdf2-sha256:1000:0011:" + String(repeating: "00", count: 32), "expected 5 fields"),
        ]
    )
    func malformedLine(line: String, reasonFragment: String) throws {
        let contents = "# header\n\(Self.externallyMadeLine)\n\(line)\n"
        let error = #expect(throws: PasswordFileError.self) {
            try PasswordFile(contents: contents, path: "/etc/users")
        }
        guard case .malformedLine(let path, let lineNumber, let reason) = error else {
            Issue.record("expected malformedLine, got \(String(describing: error))")
            return
        }
        #expect(path == "/etc/users")
        #expect(lineNumber == 3)
        #expect(reason.contains(reasonFragment), "reason: \(reason)")
        #expect(error?.description.hasPrefix("users file /etc/users, line 3: ") == true)
    }

    @Test("a user defined twice is refused")
    func duplicateUser() throws {
        let error = #expect(throws: PasswordFileError.self) {
            try PasswordFile(contents: "\(Self.externallyMadeLine)\n\(Self.externallyMadeLine)\n", path: "users")
        }
        #expect(error == .duplicateUsername(path: "users", lineNumber: 2, username: "alice"))
    }

    @Test("a missing file and a file that is not UTF-8 are clear errors")
    func unreadableFiles() async throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing").path
        await #expect(throws: PasswordFileError.unreadable(path: missing, reason: "no such file, or permission denied")) {
            _ = try await PasswordFileAuthManager(path: missing)
        }
        let binary = directory.appendingPathComponent("binary")
        try Data([0x61, 0xFF, 0xFE, 0x0A]).write(to: binary)
        await #expect(throws: PasswordFileError.notUTF8(path: binary.path)) {
            _ = try await PasswordFileAuthManager(path: binary.path)
        }
    }

    @Test("reload picks up added and removed users; a failed reload keeps the previous users")
    func reload() async throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("users")
        try Self.write(Self.externallyMadeLine + "\n", to: file)
        let manager = try await PasswordFileAuthManager(path: file.path)
        #expect(await manager.authenticate(Self.request(username: "frank", password: "pw")).isAllowed == false)

        var users = try PasswordFile(contents: Self.externallyMadeLine, path: file.path)
        users.upsert(try PasswordFileEntry(username: "frank", password: "pw", iterations: Self.testIterations))
        try Self.write(users.contents, to: file)
        #expect(try await manager.reload() == 2)
        #expect(await manager.authenticate(Self.request(username: "frank", password: "pw")).isAllowed)

        try Self.write("frank is not a valid line\n", to: file)
        await #expect(throws: PasswordFileError.self) {
            try await manager.reload()
        }
        #expect(await manager.userCount == 2)
        #expect(await manager.authenticate(Self.request(username: "frank", password: "pw")).isAllowed)

        try Self.write(Self.externallyMadeLine + "\n", to: file)
        #expect(try await manager.reload() == 1)
        #expect(await manager.authenticate(Self.request(username: "frank", password: "pw")).denialReason == .badUsernameOrPassword)
        #expect(await manager.authenticate(Self.request(username: "alice", password: "hunter2")).isAllowed)
    }

    @Test("contents writes one sorted line per user and parses back to the same users")
    func contentsRoundTrip() throws {
        var users = try PasswordFile(entries: [])
        for name in ["zoe", "adam", "mia"] {
            users.upsert(try PasswordFileEntry(username: name, password: name + "-pw", iterations: Self.testIterations))
        }
        let lines = users.contents.split(separator: "\n")
        #expect(lines.map { $0.prefix(while: { $0 != ":" }) } == ["adam", "mia", "zoe"])
        #expect(try PasswordFile(contents: users.contents, path: "x") == users)
    }

    @Test("user names with ':' or a line break are refused when creating an entry")
    func invalidUsernames() {
        #expect(throws: PasswordFileEntry.FormatError.self) {
            try PasswordFileEntry(username: "a:b", password: "pw", iterations: 1)
        }
        #expect(throws: PasswordFileEntry.FormatError.self) {
            try PasswordFileEntry(username: "a\nb", password: "pw", iterations: 1)
        }
        #expect(throws: PasswordFileEntry.FormatError.self) {
            try PasswordFileEntry(username: "", password: "pw", iterations: 1)
        }
    }
}
