import MQTTAuth
import NIOCore
import Testing

@Suite("HMAC-SHA1 signed passwords (rocketmq-mqtt scheme)")
struct HmacSHA1AuthManagerTests {
    /// Vectors computed independently of this code, with
    /// `printf %s CLIENT_ID | openssl dgst -sha1 -hmac KEY -binary | base64` and Python's `hmac` module.
    static let knownAnswers: [(secretKey: String, clientIdentifier: String, password: String)] = [
        ("secret", "clientId", "bRzy/Ltu4auwF5Okbs4pi8ArMWY="),
        ("secretKey", "GID_test@@@device-001", "6DKcuCDJ8fXWeKF0bRWD9MfOudw="),
        ("", "x", "YkTmZFGhyGlduXMc4sT9XeJcz4c="),
        ("s3cr3t-ünï", "client/ñ-😀", "y+3bc7WOFIIhqZgmEAGvw7Nckcg="),
        // A key longer than SHA-1's 64-byte block is hashed first (RFC 2104).
        (String(repeating: "a", count: 100), "long-key-is-hashed-first", "ii56yAL3BMy3xkWlIghMP7E9frg="),
        ("secret", "", "Ja9hdKD87MTTRmgKcrfOZEuaiOg="),
    ]

    @Test("password(clientIdentifier:secretKey:) matches independently computed vectors", arguments: knownAnswers)
    func knownAnswer(vector: (secretKey: String, clientIdentifier: String, password: String)) {
        #expect(
            HmacSHA1AuthManager.password(clientIdentifier: vector.clientIdentifier, secretKey: vector.secretKey)
                == vector.password
        )
    }

    @Test("the documented example: key 'secret', client id 'clientId'")
    func documentedExample() {
        #expect(HmacSHA1AuthManager.password(clientIdentifier: "clientId", secretKey: "secret") == "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
    }

    let manager = HmacSHA1AuthManager(username: "device", secretKey: "secret")

    private func request(clientIdentifier: String = "clientId", username: String?, password: String?) -> AuthRequest {
        AuthRequest(clientIdentifier: clientIdentifier, username: username, passwordBytes: password.map { Array($0.utf8) })
    }

    @Test("the right user name and signed password are allowed")
    func allowsCorrectCredentials() async {
        let decision = await self.manager.authenticate(
            self.request(username: "device", password: "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
        )
        #expect(decision.identity == AuthIdentity(username: "device"))
    }

    @Test(
        "wrong passwords are refused with bad-username-or-password",
        arguments: [
            "bRzy/Ltu4auwF5Okbs4pi8ArMWY",  // padding missing
            "bRzy/Ltu4auwF5Okbs4pi8ArMWY==",  // one byte too many
            "cRzy/Ltu4auwF5Okbs4pi8ArMWY=",  // first byte differs
            "bRzy/Ltu4auwF5Okbs4pi8ArMWZ=",  // last significant byte differs
            "brzy/ltu4auwf5okbs4pi8armwy=",  // case matters
            "bRzy_Ltu4auwF5Okbs4pi8ArMWY=",  // URL-safe alphabet is not accepted
            "secret",
            "",
        ]
    )
    func refusesWrongPassword(password: String) async {
        let decision = await self.manager.authenticate(self.request(username: "device", password: password))
        #expect(decision.denialReason == .badUsernameOrPassword)
    }

    @Test("a password signed for another client identifier is refused")
    func refusesPasswordOfAnotherClient() async {
        let otherPassword = HmacSHA1AuthManager.password(clientIdentifier: "otherClient", secretKey: "secret")
        let decision = await self.manager.authenticate(self.request(username: "device", password: otherPassword))
        #expect(decision.denialReason == .badUsernameOrPassword)
    }

    @Test("a password signed with another key is refused")
    func refusesPasswordOfAnotherKey() async {
        let otherPassword = HmacSHA1AuthManager.password(clientIdentifier: "clientId", secretKey: "secret2")
        let decision = await self.manager.authenticate(self.request(username: "device", password: otherPassword))
        #expect(decision.denialReason == .badUsernameOrPassword)
    }

    @Test("a wrong, empty or missing user name is refused even with the right password", arguments: ["Device", "device ", "", nil] as [String?])
    func refusesWrongUsername(username: String?) async {
        let decision = await self.manager.authenticate(
            self.request(username: username, password: "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
        )
        #expect(decision.denialReason == .badUsernameOrPassword)
    }

    @Test("the right user name without a password is refused")
    func refusesMissingPassword() async {
        let decision = await self.manager.authenticate(self.request(username: "device", password: nil))
        #expect(decision.denialReason == .badUsernameOrPassword)
    }

    @Test("password bytes that are not UTF-8 are compared as bytes and refused")
    func refusesNonUTF8Password() async {
        let correct = Array("bRzy/Ltu4auwF5Okbs4pi8ArMWY=".utf8)
        let candidates: [[UInt8]] = [
            [0xFF, 0xFE, 0x00, 0xC3, 0x28],
            correct.dropLast() + [0xFF],
            correct + [0x80],
            [0xC0] + correct.dropFirst(),
        ]
        for bytes in candidates {
            let decision = await self.manager.authenticate(
                AuthRequest(clientIdentifier: "clientId", username: "device", passwordBytes: bytes)
            )
            #expect(decision.denialReason == .badUsernameOrPassword, "password bytes \(bytes)")
        }
    }

    @Test("the password is read from the ByteBuffer's readable bytes only")
    func readsReadableBytesOfPassword() async {
        var buffer = ByteBuffer(string: "junk")
        buffer.writeString("bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
        buffer.moveReaderIndex(forwardBy: 4)
        let decision = await self.manager.authenticate(
            AuthRequest(clientIdentifier: "clientId", username: "device", password: buffer)
        )
        #expect(decision.isAllowed)
    }

    @Test("anonymous off: a CONNECT without credentials is refused as not authorized")
    func anonymousOff() async {
        let decision = await self.manager.authenticate(self.request(username: nil, password: nil))
        #expect(decision.denialReason == .notAuthorized)
        #expect(self.manager.allowAnonymous == false)
    }

    @Test("anonymous on: a CONNECT without credentials is allowed as anonymous")
    func anonymousOn() async {
        let manager = HmacSHA1AuthManager(username: "device", secretKey: "secret", allowAnonymous: true)
        let decision = await manager.authenticate(self.request(username: nil, password: nil))
        #expect(decision.identity == .anonymous)
        #expect(decision.identity?.isAnonymous == true)
    }

    @Test("anonymous on: credentials that are present are still checked")
    func anonymousOnStillChecksCredentials() async {
        let manager = HmacSHA1AuthManager(username: "device", secretKey: "secret", allowAnonymous: true)
        let wrongPassword = await manager.authenticate(self.request(username: "device", password: "nope"))
        #expect(wrongPassword.denialReason == .badUsernameOrPassword)
        let wrongUsername = await manager.authenticate(
            self.request(username: "intruder", password: "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
        )
        #expect(wrongUsername.denialReason == .badUsernameOrPassword)
        // An empty user name is a user name, not an absent one.
        let emptyUsername = await manager.authenticate(self.request(username: "", password: nil))
        #expect(emptyUsername.denialReason == .badUsernameOrPassword)
        let passwordOnly = await manager.authenticate(self.request(username: nil, password: "x"))
        #expect(passwordOnly.denialReason == .badUsernameOrPassword)
        let correct = await manager.authenticate(
            self.request(username: "device", password: "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
        )
        #expect(correct.identity == AuthIdentity(username: "device"))
    }

    @Test("many client identifiers: each one's own signed password is allowed and a neighbour's is not")
    func signedPasswordsAreBoundToClientIdentifier() async {
        for index in 0..<50 {
            let clientIdentifier = "device-\(index)"
            let own = HmacSHA1AuthManager.password(clientIdentifier: clientIdentifier, secretKey: "secret")
            let neighbour = HmacSHA1AuthManager.password(clientIdentifier: "device-\(index + 1)", secretKey: "secret")
            #expect(own.utf8.count == 28 && own.hasSuffix("="))
            let allowed = await self.manager.authenticate(
                self.request(clientIdentifier: clientIdentifier, username: "device", password: own)
            )
            let refused = await self.manager.authenticate(
                self.request(clientIdentifier: clientIdentifier, username: "device", password: neighbour)
            )
            #expect(allowed.isAllowed)
            #expect(refused.denialReason == .badUsernameOrPassword)
        }
    }
}

@Suite("Denial reasons carry the CONNACK codes")
struct AuthDenialReasonTests {
    @Test("codes for MQTT 3.1.1 and 5.0 (sections 3.2.2.3 and 3.2.2.2)")
    func codes() {
        #expect(AuthDenialReason.badUsernameOrPassword.returnCodeV311 == 0x04)
        #expect(AuthDenialReason.badUsernameOrPassword.reasonCodeV5 == 0x86)
        #expect(AuthDenialReason.notAuthorized.returnCodeV311 == 0x05)
        #expect(AuthDenialReason.notAuthorized.reasonCodeV5 == 0x87)
        #expect(AuthDenialReason.serverUnavailable.returnCodeV311 == 0x03)
        #expect(AuthDenialReason.serverUnavailable.reasonCodeV5 == 0x88)
    }

    @Test("connackCode picks the code by protocol level", arguments: AuthDenialReason.allCases)
    func connackCodeByProtocolLevel(reason: AuthDenialReason) {
        #expect(reason.connackCode(protocolVersion: 3) == reason.returnCodeV311)
        #expect(reason.connackCode(protocolVersion: 4) == reason.returnCodeV311)
        #expect(reason.connackCode(protocolVersion: 5) == reason.reasonCodeV5)
    }
}
