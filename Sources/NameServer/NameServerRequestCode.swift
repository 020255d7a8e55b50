import Remoting

/// The request codes the name server serves. Where RocketMQ's name server has the same request, the
/// code is RocketMQ's; the table, with headers and bodies, is in `docs/protocol.md`.
public enum NameServerRequestCode {
    /// Headers `topic`, optional `storeAddress` or `cluster`. Response body: ``TopicRoute`` (JSON).
    public static let updateAndCreateTopic: Int32 = 17
    /// Headers `namespace`, `key`; body: the value (UTF-8).
    public static let putKVConfig: Int32 = 100
    /// Headers `namespace`, `key`. Response body: the value; `KEY_NOT_FOUND` when absent.
    public static let getKVConfig: Int32 = 101
    /// Headers `namespace`, `key`. `KEY_NOT_FOUND` when absent.
    public static let deleteKVConfig: Int32 = 102
    /// Headers `kind`, `address`, `name`, `cluster`. Also a heartbeat.
    public static let registerNode: Int32 = 103
    /// Headers `kind`, `address`. `NODE_NOT_REGISTERED` when absent.
    public static let unregisterNode: Int32 = 104
    /// Header `topic`. Response body: ``TopicRoute`` (JSON); `TOPIC_NOT_EXIST` when absent.
    public static let getRouteInfoByTopic: Int32 = 105
    /// Header `kind`. Response body: `[NodeStatus]` (JSON).
    public static let getNodeList: Int32 = 106
    /// Response body: `{"topicList": [...]}` (JSON).
    public static let getAllTopicList: Int32 = 206
    /// Header `topic`. `TOPIC_NOT_EXIST` when absent.
    public static let deleteTopic: Int32 = 216
    /// Header `namespace`. Response body: `{"table": {key: value}}` (JSON); `NAMESPACE_NOT_FOUND` when empty.
    public static let getKVListByNamespace: Int32 = 219
    /// Headers `kind`, `address`. `NODE_NOT_REGISTERED` when the node must register again.
    public static let nodeHeartbeat: Int32 = 904
}

/// The header names of the name server's requests.
public enum NameServerHeader {
    public static let namespace = "namespace"
    public static let key = "key"
    public static let topic = "topic"
    public static let storeAddress = "storeAddress"
    public static let cluster = "cluster"
    public static let kind = "kind"
    public static let address = "address"
    public static let name = "name"
}

extension RemotingResponseCode {
    /// No key in the namespace (`getKvList` of an unknown namespace).
    public static let namespaceNotFound = RemotingResponseCode(rawValue: 1001)
    /// The node is not registered, or has expired: it must register again.
    public static let nodeNotRegistered = RemotingResponseCode(rawValue: 1002)
    /// No live store node in the cluster named by `updateTopic -c`.
    public static let clusterNotFound = RemotingResponseCode(rawValue: 1003)
}
