import Foundation
import MQTTAuth
import Testing

@Suite("Auth configuration from service.conf and composite managers")
struct AuthConfigurationTests {
    private static func request(clientIdentifier: String = "clientId", username: String?, password: String?) -> AuthRequest {
        AuthRequest(clientIdentifier: clientIdentifier, username: username, passwordBytes: password.map { Array($0.utf8) })
    }

    @Test("username and secretKey give the signed-password manager; other keys are ignored")
    func signedPasswordOnly() async throws {
        let configuration = try AuthConfiguration(properties: [
            "username": "device", "secretKey": "secret", "mqttPort": "1883",
        ])
        #expect(configuration.allowAnonymous == false)
        #expect(configuration.passwordFilePath == nil)
        let manager = try await configuration.makeAuthManager()
        #expect(manager is HmacSHA1AuthManager)
        let decision = await manager.authenticate(
            Self.request(username: "device", password: "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")
        )
        #expect(decision.isAllowed)
        #expect(await manager.authenticate(Self.request(username: nil, password: nil)).denialReason == .notAuthorized)
    }

    @Test("allowAnonymous accepts true and false in any case, with surrounding spaces", arguments: [
        ("true", true), ("TRUE", true), (" True ", true), ("false", false), ("False", false), ("", false),
    ])
    func allowAnonymousValues(value: String, expected: Bool) throws {
        let configuration = try AuthConfiguration(properties: [
            "username": "device", "secretKey": "secret", "allowAnonymous": value,
        ])
        #expect(configuration.allowAnonymous == expected)
    }

    @Test("an allowAnonymous that is not a boolean is an error naming the key")
    func invalidAllowAnonymous() {
        let error = #expect(throws: AuthConfigurationError.self) {
            try AuthConfiguration(properties: ["username": "device", "secretKey": "secret", "allowAnonymous": "yes"])
        }
        #expect(error == .invalidValue(key: "allowAnonymous", value: "yes", expected: "true or false"))
        #expect(error?.description == "service.conf: 'allowAnonymous=yes' is invalid; expected true or false")
    }

    @Test("username without secretKey, and secretKey without username, are errors naming the missing key")
    func missingHalf() {
        let noSecret = #expect(throws: AuthConfigurationError.self) {
            try AuthConfiguration(properties: ["username": "device"])
        }
        #expect(noSecret == .missingKey("secretKey", neededBecause: "'username' is set"))
        let emptySecret = #expect(throws: AuthConfigurationError.self) {
            try AuthConfiguration(properties: ["username": "device", "secretKey": ""])
        }
        #expect(emptySecret == .missingKey("secretKey", neededBecause: "'username' is set"))
        let noUsername = #expect(throws: AuthConfigurationError.self) {
            try AuthConfiguration(properties: ["secretKey": "secret"])
        }
        #expect(noUsername == .missingKey("username", neededBecause: "'secretKey' is set"))
        #expect(noUsername?.description.contains("'username' is missing") == true)
    }

    @Test("nothing configured and anonymous off is an error; anonymous on alone lets only anonymous clients in")
    func nothingConfigured() async throws {
        #expect(throws: AuthConfigurationError.nothingConfigured) {
            try AuthConfiguration(properties: [:])
        }
        let configuration = try AuthConfiguration(properties: ["allowAnonymous": "true"])
        let manager = try await configuration.makeAuthManager()
        #expect(await manager.authenticate(Self.request(username: nil, password: nil)).identity == .anonymous)
        #expect(await manager.authenticate(Self.request(username: "device", password: "x")).denialReason == .badUsernameOrPassword)
    }

    @Test("the description never shows the secret key")
    func descriptionRedactsSecret() throws {
        let configuration = try AuthConfiguration(properties: ["username": "device", "secretKey": "topsecret-4711"])
        #expect(!configuration.description.contains("topsecret-4711"))
        #expect(configuration.description.contains("device"))
    }

    @Test("signed passwords and a users file together: either kind of client gets in")
    func bothSchemes() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mqtt-auth-config-\(UInt64.random(in: .min ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("users")
        let operatorEntry = try PasswordFileEntry(username: "operator", password: "op-pw", iterations: 50)
        try Data((operatorEntry.line + "\n").utf8).write(to: file)

        let configuration = try AuthConfiguration(properties: [
            "username": "device", "secretKey": "secret", "authPasswordFile": file.path,
        ])
        let manager = try await configuration.makeAuthManager()
        #expect(manager is CompositeAuthManager)
        #expect(await manager.authenticate(Self.request(username: "device", password: "bRzy/Ltu4auwF5Okbs4pi8ArMWY=")).isAllowed)
        #expect(await manager.authenticate(Self.request(username: "operator", password: "op-pw")).identity == AuthIdentity(username: "operator"))
        let refused = await manager.authenticate(Self.request(username: "operator", password: "wrong"))
        #expect(refused.denialReason == .badUsernameOrPassword)
        #expect(await manager.authenticate(Self.request(username: nil, password: nil)).denialReason == .notAuthorized)
    }

    @Test("a users file that does not parse makes makeAuthManager fail")
    func badUsersFile() async throws {
        let configuration = try AuthConfiguration(properties: ["authPasswordFile": "/nonexistent/mqtt-users"])
        await #expect(throws: PasswordFileError.self) {
            _ = try await configuration.makeAuthManager()
        }
    }
}

@Suite("Plugging in a custom AuthManager")
struct CustomAuthManagerTests {
    /// A manager that allows only clients presenting a TLS client certificate of one subject, as an
    /// mTLS deployment might.
    struct CertificateSubjectAuthManager: AuthManager {
        let allowedSubject: String

        func authenticate(_ request: AuthRequest) async -> AuthDecision {
            guard let subject = request.tlsClientCertificateSubject else {
                return .deny(reason: .notAuthorized, detail: "no client certificate")
            }
            return subject == self.allowedSubject
                ? .allow(identity: AuthIdentity(username: subject))
                : .deny(reason: .notAuthorized, detail: "certificate subject \(subject) not allowed")
        }
    }

    @Test("a composite asks in order: the first allow wins; otherwise the first denial's reason is returned")
    func compositeOrder() async {
        let composite = CompositeAuthManager([
            CertificateSubjectAuthManager(allowedSubject: "CN=gateway-1"),
            HmacSHA1AuthManager(username: "device", secretKey: "secret"),
        ])
        let byCertificate = await composite.authenticate(
            AuthRequest(clientIdentifier: "c", tlsClientCertificateSubject: "CN=gateway-1")
        )
        #expect(byCertificate.identity == AuthIdentity(username: "CN=gateway-1"))
        let byPassword = await composite.authenticate(
            AuthRequest(clientIdentifier: "clientId", username: "device", passwordBytes: Array("bRzy/Ltu4auwF5Okbs4pi8ArMWY=".utf8))
        )
        #expect(byPassword.identity == AuthIdentity(username: "device"))
        let neither = await composite.authenticate(
            AuthRequest(clientIdentifier: "clientId", username: "device", passwordBytes: Array("wrong".utf8))
        )
        guard case .deny(let reason, let detail) = neither else {
            Issue.record("expected a denial, got \(neither)")
            return
        }
        #expect(reason == .notAuthorized)
        #expect(detail == "no client certificate; wrong password for client identifier")
    }
}
