/// Where a first topic's messages are stored.
public struct TopicRoute: Sendable, Hashable, Codable {
    /// The first topic, e.g. `sensors` for `sensors/7/temp`.
    public var topic: String
    /// The `host:port` of each store node that holds the topic, sorted. Empty for a topic created without
    /// a store node or cluster (a standalone node stores it locally).
    public var storeAddresses: [String]

    public init(topic: String, storeAddresses: [String]) {
        self.topic = topic
        self.storeAddresses = storeAddresses
    }
}

/// The store nodes a topic is created on (`mqadmin updateTopic -b` or `-c`).
public enum TopicTarget: Sendable, Hashable {
    /// No store node: the topic is only declared (standalone mode stores it locally).
    case none
    /// One store node, by address (`-b`).
    case storeAddress(String)
    /// Every store node currently registered in the cluster (`-c`).
    case cluster(String)
}
