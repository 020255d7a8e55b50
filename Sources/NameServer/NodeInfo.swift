/// The two roles that register with the name server.
public enum NodeKind: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// An LMQ store ("broker"): has a name and a cluster; topics are routed to it.
    case store
    /// A gateway ("connection server"): holds MQTT connections; other nodes notify it.
    case gateway

    public var description: String { rawValue }
}

/// A node as it registers: its role, the `host:port` it serves remoting on, and for a store node its
/// name and cluster.
public struct NodeInfo: Sendable, Hashable, Codable {
    public var kind: NodeKind
    /// `host:port` other nodes reach it on; identifies the node together with `kind`.
    public var address: String
    /// A store node's name (RocketMQ's broker name); may be empty for a gateway.
    public var name: String
    /// A store node's cluster; may be empty for a gateway.
    public var cluster: String

    public init(kind: NodeKind, address: String, name: String = "", cluster: String = "") {
        self.kind = kind
        self.address = address
        self.name = name
        self.cluster = cluster
    }

    /// A store node.
    public static func store(name: String, cluster: String, address: String) -> NodeInfo {
        NodeInfo(kind: .store, address: address, name: name, cluster: cluster)
    }

    /// A gateway node.
    public static func gateway(address: String, name: String = "", cluster: String = "") -> NodeInfo {
        NodeInfo(kind: .gateway, address: address, name: name, cluster: cluster)
    }
}

/// A live node in the registry, as listed by `clusterList` and `gatewayList`.
public struct NodeStatus: Sendable, Hashable, Codable {
    public var node: NodeInfo
    /// Time since its last registration or heartbeat.
    public var lastHeartbeatAgeMilliseconds: Int64
    /// Time since it first registered (re-registering does not reset it).
    public var registeredAgeMilliseconds: Int64

    public init(node: NodeInfo, lastHeartbeatAgeMilliseconds: Int64, registeredAgeMilliseconds: Int64) {
        self.node = node
        self.lastHeartbeatAgeMilliseconds = lastHeartbeatAgeMilliseconds
        self.registeredAgeMilliseconds = registeredAgeMilliseconds
    }
}
