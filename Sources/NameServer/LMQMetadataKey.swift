import NodeSupport

/// The KV namespace and keys rocketmq-mqtt keeps its metadata under (DESIGN.md). Values are
/// comma-separated plain strings.
public enum LMQMetadataKey {
    /// The namespace of the keys below.
    public static let namespace = "LMQ"
    /// Every first topic, `t1,t2`. The name server adds a topic on `updateTopic` and removes it on
    /// `deleteTopic`, keeping any entries written by hand.
    public static let allFirstTopics = "ALL_FIRST_TOPICS"
    /// The gateway nodes, `10.0.0.1,10.0.0.2` (`host:port` is accepted too).
    public static let connectNodes = "LMQ_CONNECT_NODES"
    // The wildcard filters of a first topic are under the key named after the topic: `t1/+,t1/r/#`.

    /// The non-empty, trimmed items of a comma-separated value.
    public static func items(of value: String) -> [String] {
        value.split(separator: ",").map { String($0.trimmed()) }.filter { !$0.isEmpty }
    }

    /// `items` joined with commas.
    public static func value(of items: [String]) -> String {
        items.joined(separator: ",")
    }
}
