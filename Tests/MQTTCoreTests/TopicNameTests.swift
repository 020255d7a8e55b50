import Testing

@testable import MQTTCore

@Suite("Topic names (MQTT 5.0 §4.7)")
struct TopicNameTests {
    @Test(
        "valid topic names are accepted unchanged",
        arguments: [
            "sport/tennis/player1", "sport/tennis/player1/ranking", "/", "//", "a//b", "/finance", "finance/",
            "ACCOUNTS", "Accounts", " ", "$SYS/monitor/Clients", "sport/テニス", "a$b", "%LMQ%",
        ]
    )
    func acceptsValidNames(_ text: String) throws {
        try TopicName.validate(text)
        let name = try TopicName(text)
        #expect(name.string == text)
        #expect(name.description == text)
    }

    @Test("an empty topic name is rejected [MQTT-4.7.3-1]")
    func rejectsEmpty() {
        #expect(throws: TopicError.empty) { try TopicName.validate("") }
        #expect(throws: TopicError.empty) { try TopicName("") }
    }

    @Test("a topic name of more than 65535 UTF-8 bytes is rejected, 65535 is accepted")
    func rejectsTooLong() throws {
        try TopicName.validate(String(repeating: "a", count: 65_535))
        #expect(throws: TopicError.tooLong(bytes: 65_536)) {
            try TopicName.validate(String(repeating: "a", count: 65_536))
        }
        // The limit is in bytes, not characters: 32768 two-byte characters are 65536 bytes.
        #expect(throws: TopicError.tooLong(bytes: 65_536)) {
            try TopicName.validate(String(repeating: "é", count: 32_768))
        }
    }

    @Test("U+0000 is rejected [MQTT-4.7.3-2]", arguments: ["\u{0}", "a/\u{0}", "a\u{0}b", "\u{0}/a"])
    func rejectsNull(_ text: String) {
        #expect(throws: TopicError.nullCharacter) { try TopicName.validate(text) }
    }

    @Test(
        "wildcard characters are rejected in topic names [MQTT-3.3.2-2]",
        arguments: ["+", "#", "sport/+", "sport/#", "sport/tennis+", "a#b", "+/a"]
    )
    func rejectsWildcards(_ text: String) {
        #expect(throws: TopicError.wildcardInTopicName) { try TopicName.validate(text) }
        #expect(throws: TopicError.wildcardInTopicName) { try TopicName(text) }
    }

    @Test("levels keep empty levels")
    func levels() throws {
        #expect(try TopicName("a").levels == ["a"])
        #expect(try TopicName("a/b/c").levels == ["a", "b", "c"])
        #expect(try TopicName("a//b").levels == ["a", "", "b"])
        #expect(try TopicName("/finance").levels == ["", "finance"])
        #expect(try TopicName("finance/").levels == ["finance", ""])
        #expect(try TopicName("/").levels == ["", ""])
    }

    @Test("the first topic is the first level")
    func firstTopic() throws {
        #expect(try TopicName("sensors/7/temp").firstTopic == "sensors")
        #expect(try TopicName("sensors").firstTopic == "sensors")
        #expect(try TopicName("sensors/").firstTopic == "sensors")
        #expect(try TopicName("/sensors").firstTopic == "")
        #expect(try TopicName("$SYS/broker").firstTopic == "$SYS")
    }

    @Test("topics starting with '$' are system topics")
    func systemTopics() throws {
        #expect(try TopicName("$SYS/broker/clients").isSystemTopic)
        #expect(try TopicName("$").isSystemTopic)
        #expect(try !TopicName("a/$SYS").isSystemTopic)
        #expect(try !TopicName("/$SYS").isSystemTopic)
    }

    @Test("equality and hashing are byte-wise, with no Unicode normalization [MQTT-4.7.3-4]")
    func byteWiseEquality() throws {
        let composed = try TopicName("caf\u{E9}")
        let decomposed = try TopicName("cafe\u{301}")
        #expect(composed.string == decomposed.string)  // Swift's String says canonically equal…
        #expect(composed != decomposed)  // …but they are different MQTT topics.
        #expect(Set([composed, decomposed]).count == 2)
        #expect(try TopicName("a/b") == TopicName("a/b"))
        #expect(try TopicName("a/b") != TopicName("A/b"))
    }
}
