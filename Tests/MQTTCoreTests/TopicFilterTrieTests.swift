import Foundation
import Testing

@testable import MQTTCore

@Suite("Topic filter trie")
struct TopicFilterTrieTests {
    /// Every `(filter proper, value)` pair the trie reports for `topic`, in a canonical order.
    static func trieMatches(_ trie: TopicFilterTrie<Int>, _ topic: TopicName) -> [String] {
        var found: [String] = []
        trie.forEachMatch(topic) { filter, value in found.append("\(Array(filter.utf8))|\(value)") }
        return found.sorted()
    }

    @Test("insert, remove, count and isEmpty")
    func basicOperations() throws {
        var trie = TopicFilterTrie<Int>()
        #expect(trie.isEmpty)
        #expect(trie.count == 0)
        let wildcard = try TopicFilter("a/+")
        let exact = try TopicFilter("a/b")

        var changed = trie.insert(wildcard, value: 1)
        #expect(changed)
        changed = trie.insert(wildcard, value: 1)
        #expect(!changed)  // the pair is already there
        changed = trie.insert(wildcard, value: 2)
        #expect(changed)
        changed = trie.insert(exact, value: 1)
        #expect(changed)
        changed = trie.insert(exact, value: 1)
        #expect(!changed)
        #expect(trie.count == 3)
        #expect(trie.filterCount == 2)
        #expect(!trie.isEmpty)
        #expect(trie.values(for: wildcard) == [1, 2])
        #expect(trie.contains(exact, value: 1))
        #expect(!trie.contains(exact, value: 2))

        #expect(trie.matches(try TopicName("a/b")).sorted() == [1, 1, 2])
        #expect(trie.matches(try TopicName("a/c")).sorted() == [1, 2])
        #expect(trie.matches(try TopicName("a")).isEmpty)

        changed = trie.remove(exact, value: 2)
        #expect(!changed)  // never inserted
        changed = trie.remove(try TopicFilter("x/+"), value: 1)
        #expect(!changed)  // path not in the trie
        changed = trie.remove(try TopicFilter("a/#"), value: 1)
        #expect(!changed)  // path present, entry absent
        changed = trie.remove(exact, value: 1)
        #expect(changed)
        changed = trie.remove(exact, value: 1)
        #expect(!changed)
        changed = trie.remove(wildcard, value: 1)
        #expect(changed)
        #expect(trie.count == 1)
        #expect(trie.filterCount == 1)
        #expect(trie.matches(try TopicName("a/b")) == [2])
        changed = trie.remove(wildcard, value: 2)
        #expect(changed)
        #expect(trie.isEmpty)
        #expect(trie.filterCount == 0)
        #expect(trie.matches(try TopicName("a/b")).isEmpty)
    }

    @Test("the trie agrees with the matching examples of §4.7")
    func specExamples() throws {
        var trie = TopicFilterTrie<Int>()
        let table = TopicFilterTests.specMatchingTable
        var filters: [TopicFilter] = []
        for (filterText, _, _) in table {
            let filter = try TopicFilter(filterText)
            if !filters.contains(filter) { filters.append(filter) }
        }
        for (index, filter) in filters.enumerated() {
            let changed = trie.insert(filter, value: index)
            #expect(changed)
        }
        for (filterText, topicText, expected) in table {
            let topic = try TopicName(topicText)
            let index = try #require(filters.firstIndex(of: TopicFilter(filterText)))
            #expect(trie.matches(topic).contains(index) == expected, "\(filterText) vs \(topicText)")
            let bruteForce = filters.indices.filter { filters[$0].matches(topic) }
            #expect(trie.matches(topic).sorted() == bruteForce, "\(topicText)")
        }
    }

    @Test("'a/#' matches its parent level 'a', '+' matches an empty level")
    func parentLevelAndEmptyLevel() throws {
        var trie = TopicFilterTrie<String>()
        trie.insert(try TopicFilter("a/#"), value: "multi")
        trie.insert(try TopicFilter("a/+"), value: "single")
        #expect(trie.matches(try TopicName("a")) == ["multi"])
        #expect(trie.matches(try TopicName("a/")).sorted() == ["multi", "single"])
        #expect(trie.matches(try TopicName("a/b/c")) == ["multi"])
        #expect(trie.matches(try TopicName("ab")).isEmpty)
    }

    @Test("filters starting with a wildcard do not match '$' topics [MQTT-4.7.2-1]")
    func systemTopics() throws {
        var trie = TopicFilterTrie<String>()
        for text in ["#", "+/x", "+", "+/#", "$SYS/#", "$SYS/+", "$SYS/x"] {
            trie.insert(try TopicFilter(text), value: text)
        }
        #expect(trie.matches(try TopicName("$SYS/x")).sorted() == ["$SYS/#", "$SYS/+", "$SYS/x"])
        #expect(trie.matches(try TopicName("$SYS")) == ["$SYS/#"])
        #expect(trie.matches(try TopicName("a/x")).sorted() == ["#", "+/#", "+/x"])
        #expect(trie.matches(try TopicName("a")).sorted() == ["#", "+", "+/#"])
    }

    @Test("shared subscriptions are keyed by the filter proper; the body sees the filter proper")
    func sharedSubscriptions() throws {
        var trie = TopicFilterTrie<String>()
        var changed = trie.insert(try TopicFilter("$share/g/a/+"), value: "c1@g")
        #expect(changed)
        changed = trie.insert(try TopicFilter("a/+"), value: "c2")
        #expect(changed)
        changed = trie.insert(try TopicFilter("$share/h/a/+"), value: "c2")
        #expect(!changed)  // same filter proper, same value
        #expect(trie.filterCount == 1)
        #expect(trie.values(for: try TopicFilter("a/+")) == ["c1@g", "c2"])

        var seen: [String] = []
        trie.forEachMatch(try TopicName("a/b")) { filter, value in seen.append("\(filter) \(value)") }
        #expect(seen.sorted() == ["a/+ c1@g", "a/+ c2"])

        changed = trie.remove(try TopicFilter("$share/g/a/+"), value: "c1@g")
        #expect(changed)
        #expect(trie.matches(try TopicName("a/b")) == ["c2"])
    }

    @Test("levels are compared as bytes, with no Unicode normalization [MQTT-4.7.3-4]")
    func byteWiseLevels() throws {
        var trie = TopicFilterTrie<Int>()
        trie.insert(try TopicFilter("caf\u{E9}/+"), value: 1)
        trie.insert(try TopicFilter("caf\u{E9}"), value: 2)
        #expect(trie.matches(try TopicName("caf\u{E9}/x")) == [1])
        #expect(trie.matches(try TopicName("cafe\u{301}/x")).isEmpty)
        #expect(trie.matches(try TopicName("caf\u{E9}")) == [2])
        #expect(trie.matches(try TopicName("cafe\u{301}")).isEmpty)
        let changed = trie.insert(try TopicFilter("cafe\u{301}/+"), value: 1)
        #expect(changed)  // a different filter
        #expect(trie.filterCount == 3)
    }

    @Test("removing the last value prunes the nodes left empty")
    func pruning() throws {
        var trie = TopicFilterTrie<Int>()
        let deep = try TopicFilter("a/b/+/d/#")
        let sibling = try TopicFilter("a/+")
        trie.insert(deep, value: 1)
        trie.insert(sibling, value: 1)
        let liveNodes = { (trie: TopicFilterTrie<Int>) in trie.nodes.count - trie.freeNodeIndices.count }
        #expect(liveNodes(trie) == 6)  // root, a, b, +, d under a/b; + under a
        trie.remove(deep, value: 1)
        #expect(liveNodes(trie) == 3)  // root, a, + under a
        #expect(trie.matches(try TopicName("a/b")) == [1])
        trie.insert(deep, value: 2)  // reuses freed slots
        #expect(trie.nodes.count == 6)
        #expect(trie.matches(try TopicName("a/b/x/d")) == [2])
        trie.remove(sibling, value: 1)
        trie.remove(deep, value: 2)
        #expect(liveNodes(trie) == 1)
        #expect(trie.nodes[0].children.isEmpty && trie.nodes[0].singleLevelChild == nil)
        #expect(trie.isEmpty)
    }

    @Test("the trie is a value: a copy is unaffected by later changes")
    func valueSemantics() throws {
        var original = TopicFilterTrie<Int>()
        original.insert(try TopicFilter("a/+"), value: 1)
        var copy = original
        copy.insert(try TopicFilter("a/#"), value: 2)
        copy.remove(try TopicFilter("a/+"), value: 1)
        #expect(original.matches(try TopicName("a/b")) == [1])
        #expect(copy.matches(try TopicName("a/b")) == [2])
    }

    @Test("very deep topics and filters are matched without exhausting the call stack")
    func deepTopics() throws {
        var trie = TopicFilterTrie<Int>()
        // 30,001 levels of '+', then '#': 60,001 bytes.
        let deepFilter = try TopicFilter(String(repeating: "+/", count: 30_000) + "#")
        // 65,535 empty levels in 65,534 bytes.
        let deepTopic = try TopicName(String(repeating: "/", count: 65_534))
        // As many levels, the last one '+': 65,535 bytes and 65,534 trie nodes in one chain.
        let longChain = try TopicFilter(String(repeating: "/", count: 65_534) + "+")
        trie.insert(deepFilter, value: 1)
        trie.insert(longChain, value: 2)
        trie.insert(try TopicFilter("#"), value: 3)
        #expect(deepFilter.matches(deepTopic))
        #expect(longChain.matches(deepTopic))
        #expect(trie.matches(deepTopic).sorted() == [1, 2, 3])
        #expect(trie.matches(try TopicName("a")) == [3])
        trie.remove(deepFilter, value: 1)
        trie.remove(longChain, value: 2)
        #expect(trie.nodes.count - trie.freeNodeIndices.count == 1)
    }

    // MARK: Randomized comparison with brute force

    /// SplitMix64: a tiny seeded generator, so a failing run can be replayed from its seed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Levels drawn from a small alphabet so that filters and topics collide often. It includes an empty
    /// level, a '$' level and two canonically-equivalent spellings of "é" that MQTT treats as different.
    static let levelAlphabet = ["a", "b", "c", "", "$x", "\u{E9}", "e\u{301}", "a-level-longer-than-fifteen-bytes"]

    static func randomFilter(_ generator: inout SeededGenerator) -> String {
        let levelCount = Int.random(in: 1...4, using: &generator)
        var levels: [String] = []
        for index in 0..<levelCount {
            let roll = Int.random(in: 0..<100, using: &generator)
            if index == levelCount - 1 && roll < 15 {
                levels.append("#")
            } else if roll < 35 {
                levels.append("+")
            } else {
                levels.append(levelAlphabet.randomElement(using: &generator)!)
            }
        }
        let filter = levels.joined(separator: "/")
        let shareRoll = Int.random(in: 0..<100, using: &generator)
        return shareRoll < 15 ? "$share/g\(shareRoll % 3)/" + filter : filter
    }

    static func randomTopic(_ generator: inout SeededGenerator) -> String {
        let levelCount = Int.random(in: 1...5, using: &generator)
        return (0..<levelCount).map { _ in levelAlphabet.randomElement(using: &generator)! }.joined(separator: "/")
    }

    /// A reference entry, keyed by the filter proper's bytes (String equality would merge the two "é"s).
    struct Pair: Hashable {
        var filterBytes: [UInt8]
        var value: Int
    }

    @Test("the trie agrees with brute-force matching over random filters and topics")
    func randomizedAgainstBruteForce() {
        let seed =
            ProcessInfo.processInfo.environment["TOPIC_TRIE_SEED"].flatMap(UInt64.init)
            ?? UInt64.random(in: 0...UInt64.max)
        print("TopicFilterTrie randomized test seed: \(seed) (replay with TOPIC_TRIE_SEED=\(seed))")
        var generator = SeededGenerator(state: seed)
        var trie = TopicFilterTrie<Int>()
        var reference: [Pair: TopicFilter] = [:]
        var checkedTopics = 0
        var matchesSeen = 0

        func check(_ topic: TopicName) {
            let expected = reference
                .filter { $0.value.matches(topic) }
                .map { "\($0.key.filterBytes)|\($0.key.value)" }
                .sorted()
            let actual = Self.trieMatches(trie, topic)
            #expect(actual == expected, "seed \(seed), topic \(Array(topic.string.utf8))")
            checkedTopics += 1
            matchesSeen += expected.count
        }

        for step in 0..<3_000 {
            // A lone empty level (or "$share/gN/" with nothing after it) is not a filter; skip it.
            guard let filter = try? TopicFilter(Self.randomFilter(&generator)) else { continue }
            let value = Int.random(in: 0..<4, using: &generator)
            let pair = Pair(filterBytes: Array(filter.filter.utf8), value: value)
            if Int.random(in: 0..<100, using: &generator) < 70 {
                let isNew = reference[pair] == nil
                let changed = trie.insert(filter, value: value)
                #expect(changed == isNew, "seed \(seed), insert \(filter) \(value)")
                if isNew { reference[pair] = filter }
            } else {
                let isPresent = reference[pair] != nil
                let changed = trie.remove(filter, value: value)
                #expect(changed == isPresent, "seed \(seed), remove \(filter) \(value)")
                reference[pair] = nil
            }
            #expect(trie.count == reference.count, "seed \(seed)")
            if step % 100 == 99 {
                for _ in 0..<20 {
                    if let topic = try? TopicName(Self.randomTopic(&generator)) { check(topic) }
                }
            }
        }
        for _ in 0..<300 {
            if let topic = try? TopicName(Self.randomTopic(&generator)) { check(topic) }
        }
        #expect(trie.filterCount == Set(reference.keys.map(\.filterBytes)).count, "seed \(seed)")
        // The run must have exercised real matches, not an empty trie.
        #expect(checkedTopics > 500)
        #expect(matchesSeen > 1_000)

        for (pair, filter) in reference {
            let changed = trie.remove(filter, value: pair.value)
            #expect(changed, "seed \(seed)")
        }
        #expect(trie.isEmpty)
        #expect(trie.filterCount == 0)
        #expect(trie.nodes.count - trie.freeNodeIndices.count == 1, "every node but the root is pruned")
    }
}
