import Benchmark
import MQTTCore

/// 10,000 subscriptions of a fleet of devices, and topics that devices publish to.
///
/// Filters (sites 0..<40, devices 0..<100 per site):
///   4,000 exact       `site/{s}/device/{d}/telemetry`
///   4,000 `+`         `site/{s}/+/{d}/alarm`
///   1,000 `#`         `site/{s}/device/{d}/#` for sites 0..<10
///   1,000 mixed       `+/+/device/{d}/cmd/{k}` for k 0..<10
/// Every topic below matches one filter, or two for sites 0..<10 (the `#` filters).
enum FleetSubscriptions {
    static let filterCount = 10_000

    static let filters: [TopicFilter] = {
        var strings: [String] = []
        for site in 0..<40 {
            for device in 0..<100 {
                strings.append("site/\(site)/device/\(device)/telemetry")
                strings.append("site/\(site)/+/\(device)/alarm")
            }
        }
        for site in 0..<10 {
            for device in 0..<100 { strings.append("site/\(site)/device/\(device)/#") }
        }
        for device in 0..<100 {
            for command in 0..<10 { strings.append("+/+/device/\(device)/cmd/\(command)") }
        }
        precondition(strings.count == filterCount)
        return strings.map { try! TopicFilter($0) }
    }()

    /// 1,000 topics, cycled through by the match benchmarks.
    static let topics: [TopicName] = (0..<1_000).map { index in
        let site = index % 40
        let device = (index * 7) % 100
        switch index % 3 {
        case 0: return try! TopicName("site/\(site)/device/\(device)/telemetry")
        case 1: return try! TopicName("site/\(site)/device/\(device)/alarm")
        default: return try! TopicName("site/\(site)/device/\(device)/cmd/\(index % 10)")
        }
    }

    static func makeTrie() -> TopicFilterTrie<Int> {
        var trie = TopicFilterTrie<Int>()
        for (index, filter) in filters.enumerated() {
            trie.insert(filter, value: index)
        }
        return trie
    }
}

func registerTopicFilterTrieBenchmarks() {
    let filters = FleetSubscriptions.filters
    let topics = FleetSubscriptions.topics
    let trie = FleetSubscriptions.makeTrie()
    precondition(trie.count == FleetSubscriptions.filterCount)
    for topic in topics {
        let expected = filters.indices.filter { filters[$0].matches(topic) }
        precondition(!expected.isEmpty, "every benchmark topic matches at least one filter")
        precondition(trie.matches(topic).sorted() == expected, "trie and TopicFilter.matches disagree on \(topic)")
    }

    // One inner iteration matches one topic.
    Benchmark("TopicFilterTrie forEachMatch (10,000 filters)") { benchmark in
        var matchCount = 0
        for iteration in benchmark.scaledIterations {
            trie.forEachMatch(topics[iteration % topics.count]) { _, _ in matchCount += 1 }
        }
        blackHole(matchCount)
    }

    Benchmark("TopicFilterTrie matches (10,000 filters)") { benchmark in
        for iteration in benchmark.scaledIterations {
            blackHole(trie.matches(topics[iteration % topics.count]))
        }
    }

    // The baseline the trie replaces: every filter tested against the topic. One sample is one topic.
    Benchmark(
        "Linear scan TopicFilter.matches (10,000 filters)",
        configuration: .init(
            timeUnits: .microseconds, units: [.throughput: .count, .mallocCountTotal: .count],
            scalingFactor: .one, maxIterations: 10_000
        )
    ) { benchmark in
        let topic = topics[benchmark.currentIteration % topics.count]
        var matchCount = 0
        for filter in filters where filter.matches(topic) { matchCount += 1 }
        blackHole(matchCount)
    }

    // One sample builds the whole trie; not scaled.
    Benchmark(
        "TopicFilterTrie insert 10,000 filters",
        configuration: .init(
            timeUnits: .milliseconds, units: [.throughput: .count, .mallocCountTotal: .count],
            scalingFactor: .one, maxIterations: 1_000
        )
    ) { _ in
        blackHole(FleetSubscriptions.makeTrie())
    }
}
