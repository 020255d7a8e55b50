import Testing

@testable import MQTTCore

@Suite("Topic filters and shared subscriptions (MQTT 5.0 §4.7, §4.8.2)")
struct TopicFilterTests {
    // MARK: Validation, one test per rule

    @Test(
        "valid filters from §4.7.1 are accepted",
        arguments: [
            "sport/tennis/player1/#", "sport/#", "#", "+", "+/tennis/#", "sport/+/player1", "sport/tennis/+",
            "+/+", "/+", "a/+", "+/a", "a/+/b", "a/#", "a/b/#", "a//b", "/a", "a/", "/", "$SYS/#", "$SYS/monitor/+",
            "sport/テニス/+",
        ]
    )
    func acceptsValidFilters(_ text: String) throws {
        try TopicFilter.validate(text)
        let filter = try TopicFilter(text)
        #expect(filter.string == text)
        #expect(filter.filter == text)
        #expect(filter.shareName == nil)
        #expect(!filter.isShared)
    }

    @Test("an empty filter is rejected [MQTT-4.7.3-1]")
    func rejectsEmpty() {
        #expect(throws: TopicError.empty) { try TopicFilter.validate("") }
        #expect(throws: TopicError.empty) { try TopicFilter("") }
    }

    @Test("a filter of more than 65535 UTF-8 bytes is rejected, 65535 is accepted")
    func rejectsTooLong() throws {
        try TopicFilter.validate(String(repeating: "a", count: 65_533) + "/#")
        #expect(throws: TopicError.tooLong(bytes: 65_536)) {
            try TopicFilter.validate(String(repeating: "a", count: 65_534) + "/#")
        }
    }

    @Test(
        "U+0000 is rejected [MQTT-4.7.3-2]",
        arguments: ["\u{0}", "a/\u{0}/#", "+/\u{0}", "$share/g\u{0}/a", "$share/g/a\u{0}"]
    )
    func rejectsNull(_ text: String) {
        #expect(throws: TopicError.nullCharacter) { try TopicFilter.validate(text) }
    }

    @Test(
        "'#' must be the last character [MQTT-4.7.1-2]",
        arguments: ["sport/tennis/#/ranking", "a/#/b", "#/", "#/a", "#a", "##", "a/#/", "$share/g/#/a"]
    )
    func rejectsMultiLevelWildcardNotLast(_ text: String) {
        #expect(throws: TopicError.multiLevelWildcardNotLast) { try TopicFilter.validate(text) }
        #expect(throws: TopicError.multiLevelWildcardNotLast) { try TopicFilter(text) }
    }

    @Test(
        "'#' must stand alone or follow '/' [MQTT-4.7.1-2]",
        arguments: ["sport/tennis#", "a#", "a/b#", "a/+#", "a/x#"]
    )
    func rejectsMultiLevelWildcardInsideLevel(_ text: String) {
        #expect(throws: TopicError.wildcardNotWholeLevel) { try TopicFilter.validate(text) }
    }

    @Test(
        "'+' must occupy a whole level [MQTT-4.7.1-3]",
        arguments: ["sport+", "sp+rt", "+a", "a+", "a/b+/c", "++", "a/+b", "$share/g/a+"]
    )
    func rejectsSingleLevelWildcardInsideLevel(_ text: String) {
        #expect(throws: TopicError.wildcardNotWholeLevel) { try TopicFilter.validate(text) }
        #expect(throws: TopicError.wildcardNotWholeLevel) { try TopicFilter(text) }
    }

    @Test("hasWildcards says whether the filter proper contains '+' or '#'")
    func hasWildcards() throws {
        #expect(try TopicFilter("a/+").hasWildcards)
        #expect(try TopicFilter("#").hasWildcards)
        #expect(try TopicFilter("$share/g/a/#").hasWildcards)
        #expect(try !TopicFilter("a/b").hasWildcards)
        #expect(try !TopicFilter("$share/g/a/b").hasWildcards)
    }

    @Test("the first topic is the first level of the filter proper")
    func firstTopic() throws {
        #expect(try TopicFilter("sensors/+/temp").firstTopic == "sensors")
        #expect(try TopicFilter("sensors/#").firstTopic == "sensors")
        #expect(try TopicFilter("$share/g/sensors/#").firstTopic == "sensors")
        #expect(try TopicFilter("#").firstTopic == "#")
        #expect(try TopicFilter("+/a").firstTopic == "+")
        #expect(try TopicFilter("/a").firstTopic == "")
        #expect(try TopicFilter("a/+/").levels == ["a", "+", ""])
    }

    // MARK: Shared subscriptions

    @Test("a shared subscription is split into ShareName and filter [MQTT-4.8.2-1]")
    func parsesSharedSubscription() throws {
        let shared = try TopicFilter("$share/consumer1/sport/tennis/+")
        #expect(shared.string == "$share/consumer1/sport/tennis/+")
        #expect(shared.shareName == "consumer1")
        #expect(shared.filter == "sport/tennis/+")
        #expect(shared.isShared)
        #expect(shared.hasWildcards)

        let root = try TopicFilter("$share/g/#")
        #expect(root.shareName == "g")
        #expect(root.filter == "#")

        let slashOnly = try TopicFilter("$share/g//")
        #expect(slashOnly.shareName == "g")
        #expect(slashOnly.filter == "/")

        let system = try TopicFilter("$share/g/$SYS/#")
        #expect(system.filter == "$SYS/#")
    }

    @Test(
        "only the '$share/' prefix is special",
        arguments: ["$share", "$sharex/a", "$SHARE/g/a", "$shar/g/a", "a/$share/g/b", "/$share/g/a"]
    )
    func ordinaryFiltersLookingShared(_ text: String) throws {
        let filter = try TopicFilter(text)
        #expect(filter.shareName == nil)
        #expect(filter.filter == text)
    }

    @Test(
        "the ShareName must be non-empty, without '+' or '#', and followed by '/' [MQTT-4.8.2-1] [MQTT-4.8.2-2]",
        arguments: [
            "$share/", "$share//x", "$share//", "$share/g", "$share/g+/a", "$share/+/a", "$share/#", "$share/g#/a",
        ]
    )
    func rejectsInvalidShareName(_ text: String) {
        #expect(throws: TopicError.invalidShareName) { try TopicFilter.validate(text) }
        #expect(throws: TopicError.invalidShareName) { try TopicFilter(text) }
    }

    @Test("the filter after '$share/{ShareName}/' must not be empty [MQTT-4.8.2-2]")
    func rejectsEmptySharedFilter() {
        #expect(throws: TopicError.emptySharedFilter) { try TopicFilter.validate("$share/g/") }
        #expect(throws: TopicError.emptySharedFilter) { try TopicFilter("$share/group/") }
    }

    // MARK: Matching

    /// The examples of MQTT 5.0 §4.7.1.2, §4.7.1.3 and §4.7.2 (and 3.1.1 §4.7), as (filter, topic, matches).
    static let specMatchingTable: [(String, String, Bool)] = [
        // §4.7.1.2 multi-level wildcard
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/tennis/player1/#", "sport/tennis", false),
        ("sport/#", "sport", true),
        ("sport/#", "sport/", true),
        ("sport/#", "sports", false),
        ("#", "sport/tennis/player1", true),
        ("#", "/", true),
        // §4.7.1.3 single-level wildcard
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "finance", true),
        ("+/tennis/#", "sport/tennis/player1/ranking", true),
        ("+/tennis/#", "sport/tennis", true),
        ("sport/+/player1", "sport/tennis/player1", true),
        ("sport/+/player1", "sport//player1", true),
        ("sport/+/player1", "sport/tennis/player2", false),
        // §4.7.3 levels are case-sensitive and empty levels count
        ("ACCOUNTS", "ACCOUNTS", true),
        ("ACCOUNTS", "Accounts", false),
        ("/finance", "finance", false),
        ("finance", "/finance", false),
        ("a//b", "a//b", true),
        ("a//b", "a/b", false),
        ("a/", "a", false),
        ("a/", "a/", true),
        ("a/+/+", "a/", false),
        ("a/+/#", "a/", true),
        ("+/+/+", "//", true),
        // §4.7.2 topics beginning with '$' [MQTT-4.7.2-1]
        ("#", "$SYS/broker", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("+", "$SYS", false),
        ("+/#", "$SYS/x", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/#", "$SYS", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/Clients", "$SYS/monitor/Clients", true),
        ("a/#", "a/$x", true),
        ("a/+", "a/$x", true),
        ("+/$x", "a/$x", true),
    ]

    @Test("the matching examples of §4.7", arguments: specMatchingTable)
    func matchesSpecExamples(_ filterText: String, _ topicText: String, _ expected: Bool) throws {
        let filter = try TopicFilter(filterText)
        let topic = try TopicName(topicText)
        #expect(filter.matches(topic) == expected, "\(filterText) vs \(topicText)")
        // A shared subscription matches like its filter proper.
        let shared = try TopicFilter("$share/group/" + filterText)
        #expect(shared.matches(topic) == expected, "$share/group/\(filterText) vs \(topicText)")
    }

    @Test("matching compares bytes, with no Unicode normalization [MQTT-4.7.3-4]")
    func matchingIsByteWise() throws {
        let composed = try TopicFilter("caf\u{E9}/+")
        #expect(composed.matches(try TopicName("caf\u{E9}/x")))
        #expect(!composed.matches(try TopicName("cafe\u{301}/x")))
        // A combining mark right after '/' stays in its level.
        #expect(try TopicFilter("a/+").matches(TopicName("a/\u{301}")))
        #expect(try !TopicFilter("a/+").matches(TopicName("a/\u{301}/b")))
    }

    @Test("filter equality and hashing are byte-wise")
    func byteWiseEquality() throws {
        #expect(try TopicFilter("caf\u{E9}/#") != TopicFilter("cafe\u{301}/#"))
        #expect(try TopicFilter("a/+") == TopicFilter("a/+"))
        #expect(try TopicFilter("$share/g/a") != TopicFilter("a"))
        #expect(try Set([TopicFilter("a/#"), TopicFilter("a/#"), TopicFilter("$share/g/a/#")]).count == 2)
    }
}
