import Foundation
import NIOCore
import Remoting

/// A ``NameServerClient`` that talks to one name server over the network.
///
/// Failures to reach the server are ``NameServerError/unavailable(_:)``; the server's answers map back to
/// the same errors the in-process service throws.
public struct RemotingNameServerClient: NameServerClient {
    /// The name server this client talks to.
    public let address: RemotingAddress
    /// Shared connections; one client can serve many ``RemotingNameServerClient``s.
    public let remotingClient: RemotingClient
    /// The timeout of each request; `nil` uses the remoting client's default.
    public let timeout: Duration?

    public init(address: RemotingAddress, remotingClient: RemotingClient, timeout: Duration? = nil) {
        self.address = address
        self.remotingClient = remotingClient
        self.timeout = timeout
    }

    // MARK: KV

    public func getKV(namespace: String, key: String) async throws(NameServerError) -> String? {
        let response = try await call(NameServerRequestCode.getKVConfig, [NameServerHeader.namespace: namespace, NameServerHeader.key: key])
        switch response.responseCode {
        case .success: return response.bodyString
        case .keyNotFound: return nil
        default: throw error(from: response)
        }
    }

    public func putKV(namespace: String, key: String, value: String) async throws(NameServerError) {
        try expectSuccess(
            try await call(
                NameServerRequestCode.putKVConfig, [NameServerHeader.namespace: namespace, NameServerHeader.key: key], body: ByteBuffer(string: value)
            )
        )
    }

    @discardableResult
    public func deleteKV(namespace: String, key: String) async throws(NameServerError) -> Bool {
        let response = try await call(NameServerRequestCode.deleteKVConfig, [NameServerHeader.namespace: namespace, NameServerHeader.key: key])
        switch response.responseCode {
        case .success: return true
        case .keyNotFound: return false
        default: throw error(from: response)
        }
    }

    public func listKV(namespace: String) async throws(NameServerError) -> [String: String] {
        let response = try await call(NameServerRequestCode.getKVListByNamespace, [NameServerHeader.namespace: namespace])
        switch response.responseCode {
        case .success: return try decode(KVTable.self, from: response).table
        case .namespaceNotFound: return [:]
        default: throw error(from: response)
        }
    }

    // MARK: Topics

    @discardableResult
    public func updateTopic(_ topic: String, target: TopicTarget) async throws(NameServerError) -> TopicRoute {
        var headers = [NameServerHeader.topic: topic]
        switch target {
        case .none: break
        case .storeAddress(let address): headers[NameServerHeader.storeAddress] = address
        case .cluster(let cluster): headers[NameServerHeader.cluster] = cluster
        }
        let response = try await call(NameServerRequestCode.updateAndCreateTopic, headers)
        try expectSuccess(response, cluster: headers[NameServerHeader.cluster], topic: topic)
        return try decode(TopicRoute.self, from: response)
    }

    public func deleteTopic(_ topic: String) async throws(NameServerError) {
        try expectSuccess(try await call(NameServerRequestCode.deleteTopic, [NameServerHeader.topic: topic]), topic: topic)
    }

    public func topicList() async throws(NameServerError) -> [String] {
        let response = try await call(NameServerRequestCode.getAllTopicList, [:])
        try expectSuccess(response)
        return try decode(TopicList.self, from: response).topicList
    }

    public func topicRoute(_ topic: String) async throws(NameServerError) -> TopicRoute {
        let response = try await call(NameServerRequestCode.getRouteInfoByTopic, [NameServerHeader.topic: topic])
        try expectSuccess(response, topic: topic)
        return try decode(TopicRoute.self, from: response)
    }

    // MARK: Node registry

    public func registerNode(_ node: NodeInfo) async throws(NameServerError) {
        let headers = [
            NameServerHeader.kind: node.kind.rawValue, NameServerHeader.address: node.address,
            NameServerHeader.name: node.name, NameServerHeader.cluster: node.cluster,
        ]
        try expectSuccess(try await call(NameServerRequestCode.registerNode, headers))
    }

    public func heartbeat(kind: NodeKind, address: String) async throws(NameServerError) {
        let response = try await call(NameServerRequestCode.nodeHeartbeat, [NameServerHeader.kind: kind.rawValue, NameServerHeader.address: address])
        try expectSuccess(response, node: (kind, address))
    }

    @discardableResult
    public func unregisterNode(kind: NodeKind, address: String) async throws(NameServerError) -> Bool {
        let response = try await call(NameServerRequestCode.unregisterNode, [NameServerHeader.kind: kind.rawValue, NameServerHeader.address: address])
        switch response.responseCode {
        case .success: return true
        case .nodeNotRegistered: return false
        default: throw error(from: response)
        }
    }

    public func listNodes(kind: NodeKind) async throws(NameServerError) -> [NodeStatus] {
        let response = try await call(NameServerRequestCode.getNodeList, [NameServerHeader.kind: kind.rawValue])
        try expectSuccess(response)
        return try decode([NodeStatus].self, from: response)
    }

    // MARK: Plumbing

    private func call(_ code: Int32, _ headers: [String: String], body: ByteBuffer = ByteBuffer()) async throws(NameServerError) -> RemotingCommand {
        do {
            return try await remotingClient.invoke(.request(code: code, headers: headers, body: body), to: address, timeout: timeout)
        } catch {
            switch error {
            case .invalidRequest(let frameError):
                throw .invalidArgument("request too large for the wire: \(frameError)")
            default:
                throw .unavailable(error)
            }
        }
    }

    private func expectSuccess(
        _ response: RemotingCommand, cluster: String? = nil, topic: String? = nil, node: (NodeKind, String)? = nil
    ) throws(NameServerError) {
        guard response.responseCode != .success else { return }
        throw error(from: response, cluster: cluster, topic: topic, node: node)
    }

    private func error(
        from response: RemotingCommand, cluster: String? = nil, topic: String? = nil, node: (NodeKind, String)? = nil
    ) -> NameServerError {
        let remark = response.remark ?? ""
        switch response.responseCode {
        case .invalidParameter:
            return .invalidArgument(remark)
        case .topicNotExist:
            return .topicNotFound(topic ?? remark)
        case .clusterNotFound:
            return .clusterNotFound(cluster ?? remark)
        case .nodeNotRegistered:
            if let node { return .nodeNotRegistered(kind: node.0, address: node.1) }
            return .unexpectedResponse(code: response.responseCode, remark: remark)
        case .serviceNotAvailable:
            return .notRunning
        default:
            return .unexpectedResponse(code: response.responseCode, remark: remark)
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, from response: RemotingCommand) throws(NameServerError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body.readableBytesView))
        } catch {
            throw .unexpectedResponse(code: response.responseCode, remark: "malformed \(T.self) body: \(error)")
        }
    }
}
