import Remoting

/// The name server's persistent metadata in memory: the KV namespaces and the topic routes.
///
/// A pure value holding the rules: each write is first *planned* (validated, and turned into the list
/// of ``Change``s it makes, including the upkeep of `LMQ/ALL_FIRST_TOPICS`), the changes are committed
/// to SQLite, and only then *applied* here. Reads never touch the disk.
struct NameServerMetadata: Sendable {
    /// One row-level change, as committed to the database and applied in memory.
    enum Change: Sendable, Hashable {
        case putValue(namespace: String, key: String, value: String)
        case deleteValue(namespace: String, key: String)
        case putTopic(TopicRoute)
        case deleteTopic(String)
    }

    let limits: NameServerLimits
    /// namespace → key → value. A namespace exists while it has a key.
    private(set) var namespaces: [String: [String: String]] = [:]
    /// first topic → route.
    private(set) var topics: [String: TopicRoute] = [:]
    private(set) var keyCount = 0

    init(limits: NameServerLimits) {
        self.limits = limits
    }

    // MARK: Reads

    func value(namespace: String, key: String) -> String? {
        namespaces[namespace]?[key]
    }

    func entries(namespace: String) -> [String: String] {
        namespaces[namespace] ?? [:]
    }

    // MARK: Plans (validate a write and list its changes; nothing changes here)

    func planPut(namespace: String, key: String, value: String) throws(NameServerError) -> [Change] {
        try validateNamespace(namespace)
        try validateKey(key)
        let size = value.utf8.count
        guard size <= limits.maxValueBytes else {
            throw .invalidArgument("value of \(size) bytes exceeds the limit of \(limits.maxValueBytes) bytes")
        }
        if self.value(namespace: namespace, key: key) == nil, keyCount >= limits.maxKeyCount {
            throw .invalidArgument("the name server holds its maximum of \(limits.maxKeyCount) keys")
        }
        return [.putValue(namespace: namespace, key: key, value: value)]
    }

    /// `nil` when the key does not exist.
    func planDelete(namespace: String, key: String) throws(NameServerError) -> [Change]? {
        try validateNamespace(namespace)
        try validateKey(key)
        guard self.value(namespace: namespace, key: key) != nil else { return nil }
        return [.deleteValue(namespace: namespace, key: key)]
    }

    /// Creates the topic or adds stores to its route, and lists it in `ALL_FIRST_TOPICS`.
    func planUpdateTopic(_ topic: String, addingStores storeAddresses: [String]) throws(NameServerError) -> (changes: [Change], route: TopicRoute) {
        try Self.validateTopic(topic, limits: limits)
        for address in storeAddresses {
            guard RemotingAddress(parsing: address) != nil else {
                throw .invalidArgument("store address \"\(address)\" is not host:port")
            }
        }
        if topics[topic] == nil, topics.count >= limits.maxTopicCount {
            throw .invalidArgument("the name server holds its maximum of \(limits.maxTopicCount) topics")
        }
        let existing = topics[topic]?.storeAddresses ?? []
        let merged = Array(Set(existing).union(storeAddresses)).sorted()
        guard merged.count <= limits.maxStoresPerTopic else {
            throw .invalidArgument("topic \(topic) would have \(merged.count) store nodes, over the limit of \(limits.maxStoresPerTopic)")
        }
        let route = TopicRoute(topic: topic, storeAddresses: merged)
        var changes: [Change] = []
        if topics[topic] != route {
            changes.append(.putTopic(route))
        }
        let listed = LMQMetadataKey.items(of: value(namespace: LMQMetadataKey.namespace, key: LMQMetadataKey.allFirstTopics) ?? "")
        if !listed.contains(topic) {
            if value(namespace: LMQMetadataKey.namespace, key: LMQMetadataKey.allFirstTopics) == nil, keyCount >= limits.maxKeyCount {
                throw .invalidArgument("the name server holds its maximum of \(limits.maxKeyCount) keys")
            }
            changes.append(
                .putValue(namespace: LMQMetadataKey.namespace, key: LMQMetadataKey.allFirstTopics, value: LMQMetadataKey.value(of: listed + [topic]))
            )
        }
        return (changes, route)
    }

    /// Removes the topic and its entry in `ALL_FIRST_TOPICS` (the key goes when its list is empty).
    /// The topic's wildcard-filter key is left alone: it is operator data.
    func planDeleteTopic(_ topic: String) throws(NameServerError) -> [Change] {
        try Self.validateTopic(topic, limits: limits)
        var changes: [Change] = []
        if topics[topic] != nil {
            changes.append(.deleteTopic(topic))
        }
        let listed = LMQMetadataKey.items(of: value(namespace: LMQMetadataKey.namespace, key: LMQMetadataKey.allFirstTopics) ?? "")
        if listed.contains(topic) {
            let remaining = listed.filter { $0 != topic }
            changes.append(
                remaining.isEmpty
                    ? .deleteValue(namespace: LMQMetadataKey.namespace, key: LMQMetadataKey.allFirstTopics)
                    : .putValue(namespace: LMQMetadataKey.namespace, key: LMQMetadataKey.allFirstTopics, value: LMQMetadataKey.value(of: remaining))
            )
        }
        guard !changes.isEmpty else { throw .topicNotFound(topic) }
        return changes
    }

    // MARK: Apply

    mutating func apply(_ changes: [Change]) {
        for change in changes {
            switch change {
            case .putValue(let namespace, let key, let value):
                if namespaces[namespace, default: [:]].updateValue(value, forKey: key) == nil {
                    keyCount += 1
                }
            case .deleteValue(let namespace, let key):
                if namespaces[namespace]?.removeValue(forKey: key) != nil {
                    keyCount -= 1
                    if namespaces[namespace]?.isEmpty == true { namespaces[namespace] = nil }
                }
            case .putTopic(let route):
                topics[route.topic] = route
            case .deleteTopic(let topic):
                topics[topic] = nil
            }
        }
    }

    // MARK: Validation

    private func validateNamespace(_ namespace: String) throws(NameServerError) {
        try Self.validateName(namespace, what: "namespace", maxBytes: limits.maxNamespaceBytes)
    }

    private func validateKey(_ key: String) throws(NameServerError) {
        try Self.validateName(key, what: "key", maxBytes: limits.maxKeyBytes)
    }

    /// Namespaces, keys, names: non-empty, bounded, no control characters (they are printed one per line).
    static func validateName(_ text: String, what: String, maxBytes: Int) throws(NameServerError) {
        guard !text.isEmpty else { throw .invalidArgument("\(what) must not be empty") }
        guard text.utf8.count <= maxBytes else {
            throw .invalidArgument("\(what) of \(text.utf8.count) bytes exceeds the limit of \(maxBytes) bytes")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidArgument("\(what) \"\(text.debugDescription.dropFirst().dropLast())\" contains a control character")
        }
    }

    /// A first topic is one MQTT topic level: no `/`, no wildcard, no `,` (it is listed in a
    /// comma-separated value), no white space.
    static func validateTopic(_ topic: String, limits: NameServerLimits) throws(NameServerError) {
        try validateName(topic, what: "topic", maxBytes: limits.maxTopicBytes)
        if let bad = topic.first(where: { "/+#,".contains($0) || $0.isWhitespace }) {
            throw .invalidArgument("topic \"\(topic)\" contains \"\(bad)\"; a first topic is one topic level without wildcards, commas or spaces")
        }
    }
}
