/// Why a producer or consumer call failed. Errors of the store node or the network come as they are
/// (`RemotingError`, `LMQMetadataStoreError`).
public enum LMQClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A name server address is not `host:port`.
    case invalidAddress(String)
    /// No store node registered with the name servers within the wait; `nameServerError`: why none of
    /// them answered, if none did.
    case noStoreNode(nameServers: [String], waitedSeconds: Int, nameServerError: String?)
    /// The topic name is not a valid MQTT topic name (empty, a wildcard, a NUL, too long).
    case invalidTopic(String, reason: String)
    /// The topic filter of a subscription is not a valid MQTT topic filter (or is a shared one).
    case invalidFilter(String, reason: String)
    /// Topics under `$SYS` are the gateways' own ([MQTT-4.7.2-1]).
    case reservedTopic(String)
    /// The consumer group name is empty or contains `%` or `/`.
    case invalidGroup(String)
    /// The producer or consumer was shut down.
    case shutDown

    public var description: String {
        switch self {
        case .invalidAddress(let address): "'\(address)' is not host:port"
        case .noStoreNode(let nameServers, let seconds, let nameServerError?):
            "no name server of \(nameServers.joined(separator: ";")) answered within \(seconds) s: \(nameServerError)"
        case .noStoreNode(let nameServers, let seconds, nil):
            "no store node registered with the name servers \(nameServers.joined(separator: ";")) within \(seconds) s: "
                + "start a node (bin/mqtt.sh start, or bin/mqbroker start in a cluster)"
        case .invalidTopic(let topic, let reason): "invalid topic name '\(topic)': \(reason)"
        case .invalidFilter(let filter, let reason): "invalid topic filter '\(filter)': \(reason)"
        case .reservedTopic(let topic): "topic '\(topic)' is reserved for the gateways ($SYS)"
        case .invalidGroup(let group): "invalid consumer group '\(group)': it must be non-empty, without '%' or '/'"
        case .shutDown: "the client was shut down"
        }
    }
}
