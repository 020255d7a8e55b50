import Foundation
@testable import MQTTAuth
import Testing

@Suite("ACL file: parsing and matching")
struct ACLTests {
    static let example = """
        # operators may do anything
        allow both user:admin #
        # every device owns its subtree
        allow both all devices/%c/#
        # users read their inbox, anonymous clients nothing private
        allow subscribe all users/%u/inbox
        deny subscribe all secret/#
        deny publish client:bad-device #
        allow publish all telemetry/+/data
        allow subscribe all telemetry/#
        """

    static func authorizer(_ clientIdentifier: String, user: String?, rules: String = example) throws -> ACLClientAuthorizer {
        let file = try ACLFile(contents: rules, path: "acl.conf")
        return ACLAuthorizationManager(file: file, source: "acl.conf").clientAuthorizer(clientIdentifier: clientIdentifier, username: user)
    }

    @Test("rules parse in file order with line numbers; comments and blank lines are skipped")
    func parsing() throws {
        let file = try ACLFile(contents: Self.example + "\n\n  # indented comment\r\nallow publish anonymous a b/c \r\n", path: "acl.conf")
        #expect(file.rules.count == 8)
        #expect(file.rules.first?.lineNumber == 2)
        #expect(file.rules.first?.subject == .user("admin"))
        #expect(file.rules[1].topicFilter == "devices/%c/#")
        let last = try #require(file.rules.last)
        #expect(last.subject == .anonymous)
        #expect(last.access == .publish)
        #expect(last.topicFilter == "a b/c")  // the rest of the line, trailing blanks dropped
        #expect(last.line == "allow publish anonymous a b/c")
    }

    @Test("malformed lines are refused with the file and line", arguments: [
        ("permit publish all a", "expected 'allow' or 'deny'"),
        ("allow read all a", "expected 'publish', 'subscribe' or 'both'"),
        ("allow publish everyone a", "expected 'all', 'anonymous'"),
        ("allow publish user: a", "expected 'all', 'anonymous'"),
        ("allow publish all", "a topic filter is missing"),
        ("allow publish all a/#/b", "'#' must be a whole level and the last one"),
        ("allow publish all a/b#", "'#' must be a whole level"),
        ("allow publish all a/b+/c", "'+' must be a whole level"),
    ])
    func malformed(line: String, reason: String) {
        #expect {
            try ACLFile(contents: "# header\n\(line)\n", path: "/etc/acl.conf")
        } throws: { error in
            guard let error = error as? ACLFileError, case .malformedLine(let path, let lineNumber, let found) = error else { return false }
            return path == "/etc/acl.conf" && lineNumber == 2 && found.contains(reason)
                && error.description.hasPrefix("ACL file /etc/acl.conf, line 2: ")
        }
    }

    @Test("publish: %c substitution, first match wins, no match is denied")
    func publish() throws {
        let device = try Self.authorizer("dev1", user: "alice")
        #expect(device.authorize(.publish, topic: "devices/dev1/temp") == .allow)
        #expect(device.authorize(.publish, topic: "devices/dev1") == .allow)  // `#` matches the parent level
        #expect(!device.authorize(.publish, topic: "devices/dev2/temp").isAllowed)
        #expect(device.authorize(.publish, topic: "telemetry/x/data") == .allow)
        #expect(!device.authorize(.publish, topic: "telemetry/x/y/data").isAllowed)
        guard case .deny(let rule) = device.authorize(.publish, topic: "other") else {
            Issue.record("expected a denial")
            return
        }
        #expect(rule.contains("no rule matched"))

        // The deny on line 8 comes after the allow on line 4: the device's own subtree stays allowed.
        let bad = try Self.authorizer("bad-device", user: nil)
        #expect(bad.authorize(.publish, topic: "devices/bad-device/x") == .allow)
        guard case .deny(let badRule) = bad.authorize(.publish, topic: "telemetry/x/data") else {
            Issue.record("expected a denial")
            return
        }
        #expect(badRule == "acl.conf line 8: deny publish client:bad-device #")

        let admin = try Self.authorizer("console", user: "admin")
        #expect(admin.authorize(.publish, topic: "anything/at/all") == .allow)
        #expect(admin.authorize(.subscribe, topic: "#") == .allow)
    }

    @Test("subscribe: allow needs the whole filter inside the rule, deny refuses any overlap")
    func subscribe() throws {
        let alice = try Self.authorizer("dev1", user: "alice")
        #expect(alice.authorize(.subscribe, topic: "users/alice/inbox") == .allow)
        #expect(!alice.authorize(.subscribe, topic: "users/bob/inbox").isAllowed)
        #expect(!alice.authorize(.subscribe, topic: "users/+/inbox").isAllowed)  // wider than the rule
        #expect(alice.authorize(.subscribe, topic: "telemetry/+/data") == .allow)
        #expect(alice.authorize(.subscribe, topic: "devices/dev1/+") == .allow)
        // `#` overlaps `secret/#`, so the deny on line 7 refuses it before anything could allow it.
        guard case .deny(let rule) = alice.authorize(.subscribe, topic: "#") else {
            Issue.record("expected a denial")
            return
        }
        #expect(rule.contains("line 7"))
        #expect(!alice.authorize(.subscribe, topic: "+/x").isAllowed)
        // A shared subscription is judged by its filter.
        #expect(alice.authorize(.subscribe, topic: "$share/g/telemetry/a/data") == .allow)
        #expect(!alice.authorize(.subscribe, topic: "$share/g/secret/a").isAllowed)
    }

    @Test("%u: rules about the user name do not apply to anonymous clients")
    func anonymousAndUsername() throws {
        let anonymous = try Self.authorizer("dev9", user: nil)
        #expect(!anonymous.authorize(.subscribe, topic: "users/%u/inbox").isAllowed)
        #expect(!anonymous.authorize(.subscribe, topic: "users//inbox").isAllowed)
        let rules = "allow publish anonymous public/#\nallow publish user:bob bob/#\n"
        #expect(try Self.authorizer("x", user: nil, rules: rules).authorize(.publish, topic: "public/a") == .allow)
        #expect(!(try Self.authorizer("x", user: "bob", rules: rules).authorize(.publish, topic: "public/a").isAllowed))
        #expect(try Self.authorizer("x", user: "bob", rules: rules).authorize(.publish, topic: "bob/a") == .allow)
    }

    @Test("a client identifier or user name with '/', '+' or '#' makes a substituting rule deny")
    func unsafeSubstitution() throws {
        let rules = "deny publish all private/%c/#\nallow publish all devices/%c/#\nallow publish all public/#\n"
        for identifier in ["a/b", "+", "#"] {
            let client = try Self.authorizer(identifier, user: nil, rules: rules)
            // The deny rule matches whatever the topic.
            guard case .deny(let rule) = client.authorize(.publish, topic: "public/x") else {
                Issue.record("\(identifier): expected a denial")
                continue
            }
            #expect(rule.contains("line 1") && rule.contains("contains '/', '+' or '#'"))
        }
        // Without the deny rule, the allow rule never matches: `devices/+/#` must not open every device.
        let allowOnly = "allow publish all devices/%c/#\nallow publish all public/#\n"
        let plus = try Self.authorizer("+", user: nil, rules: allowOnly)
        #expect(!plus.authorize(.publish, topic: "devices/other/x").isAllowed)
        #expect(!plus.authorize(.publish, topic: "devices/+/x").isAllowed)
        #expect(plus.authorize(.publish, topic: "public/x") == .allow)
        #expect(try Self.authorizer("dev", user: nil, rules: allowOnly).authorize(.publish, topic: "devices/dev/x") == .allow)
        // Substitution is one pass: a client identifier containing `%u` is not substituted again.
        #expect(ACLClientAuthorizer.substitute("d/%c/%u/%x", clientIdentifier: "c%u", username: "u") == "d/c%u/u/%x")
    }

    @Test("wildcards of allow rules do not reach $ topics; those of deny rules do")
    func dollarTopics() throws {
        let rules = "deny publish all +/secret\nallow both all #\n"
        let client = try Self.authorizer("c", user: nil, rules: rules)
        #expect(!client.authorize(.publish, topic: "$SYS/broker").isAllowed)
        #expect(!client.authorize(.publish, topic: "$x/secret").isAllowed)
        #expect(client.authorize(.publish, topic: "a/b") == .allow)
        #expect(!client.authorize(.subscribe, topic: "$SYS/#").isAllowed)
        let sysReader = try Self.authorizer("c", user: nil, rules: "allow subscribe all $SYS/#\n")
        #expect(sysReader.authorize(.subscribe, topic: "$SYS/broker/+") == .allow)
    }

    @Test("the shipped conf/acl.conf parses and means what its comments say")
    func shippedExample() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../conf/acl.conf").standardized.path
        let manager = try await ACLAuthorizationManager.load(path: path)
        #expect(manager.ruleCount == 8)
        let device = manager.clientAuthorizer(clientIdentifier: "dev1", username: "alice")
        #expect(device.authorize(.publish, topic: "devices/dev1/temp") == .allow)
        #expect(device.authorize(.subscribe, topic: "users/alice/inbox") == .allow)
        #expect(!device.authorize(.subscribe, topic: "audit/#").isAllowed)
        #expect(!device.authorize(.subscribe, topic: "#").isAllowed)
        let broken = manager.clientAuthorizer(clientIdentifier: "broken-device-17", username: nil)
        #expect(broken.authorize(.publish, topic: "devices/broken-device-17/x") == .allow)
        #expect(!broken.authorize(.publish, topic: "telemetry/x").isAllowed)
        #expect(broken.authorize(.subscribe, topic: "public/news") == .allow)
        #expect(manager.clientAuthorizer(clientIdentifier: "op", username: "admin").authorize(.subscribe, topic: "#") == .allow)
    }

    @Test("aclFile in service.conf: read, trimmed, and empty means none")
    func configuration() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("acl-\(UUID().uuidString).conf").path
        try "allow publish all a/#\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configured = try AuthConfiguration(properties: ["allowAnonymous": "true", "aclFile": " \(path) "])
        #expect(configured.aclFilePath == path)
        let manager = try #require(try await configured.makeAuthorizationManager())
        let authorizer = manager.authorizer(clientIdentifier: "c", identity: .anonymous)
        #expect(authorizer.authorize(.publish, topic: "a/b") == .allow)
        #expect(!authorizer.authorize(.publish, topic: "b").isAllowed)

        let none = try AuthConfiguration(properties: ["allowAnonymous": "true", "aclFile": ""])
        #expect(none.aclFilePath == nil)
        #expect(try await none.makeAuthorizationManager() == nil)

        let missing = try AuthConfiguration(properties: ["allowAnonymous": "true", "aclFile": path + ".missing"])
        await #expect(throws: ACLFileError.self) { try await missing.makeAuthorizationManager() }
    }
}
