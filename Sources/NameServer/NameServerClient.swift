/// What nodes and tools ask of a name server.
///
/// Two implementations: the ``NameServerService`` of an in-process ``NameServer`` (standalone mode)
/// and ``RemotingNameServerClient`` over the network (cluster mode). They throw the same
/// ``NameServerError``s, so a caller holds `any NameServerClient` and does not care which it has.
public protocol NameServerClient: Sendable {
    // MARK: KV

    /// The value of `key` in `namespace`, or `nil` when there is none.
    func getKV(namespace: String, key: String) async throws(NameServerError) -> String?
    /// Sets `key` in `namespace` to `value`; durable when it returns.
    func putKV(namespace: String, key: String, value: String) async throws(NameServerError)
    /// Deletes `key` from `namespace`; returns `false` when it did not exist.
    @discardableResult
    func deleteKV(namespace: String, key: String) async throws(NameServerError) -> Bool
    /// Every key of `namespace` with its value; empty for a namespace without keys.
    func listKV(namespace: String) async throws(NameServerError) -> [String: String]

    // MARK: Topics

    /// Creates the first topic `topic`, or adds store nodes to its route, and lists it in
    /// `LMQ/ALL_FIRST_TOPICS`. Returns the route after the update.
    @discardableResult
    func updateTopic(_ topic: String, target: TopicTarget) async throws(NameServerError) -> TopicRoute
    /// Deletes the topic and removes it from `LMQ/ALL_FIRST_TOPICS`.
    func deleteTopic(_ topic: String) async throws(NameServerError)
    /// Every first topic, sorted.
    func topicList() async throws(NameServerError) -> [String]
    /// The route of `topic`; throws ``NameServerError/topicNotFound(_:)`` for an unknown topic.
    func topicRoute(_ topic: String) async throws(NameServerError) -> TopicRoute

    // MARK: Node registry

    /// Registers `node`, or refreshes its registration (which is also a heartbeat).
    func registerNode(_ node: NodeInfo) async throws(NameServerError)
    /// Records that the node is alive; throws ``NameServerError/nodeNotRegistered(kind:address:)`` when
    /// it is not registered (e.g. the name server restarted), and the node should register again.
    func heartbeat(kind: NodeKind, address: String) async throws(NameServerError)
    /// Removes a node that is shutting down; returns `false` when it was not registered.
    @discardableResult
    func unregisterNode(kind: NodeKind, address: String) async throws(NameServerError) -> Bool
    /// The live nodes of `kind`, with the age of their last heartbeat.
    func listNodes(kind: NodeKind) async throws(NameServerError) -> [NodeStatus]
}
