import Foundation
import NIOCore
import Remoting

/// Serves a ``NameServerClient`` over remoting: decodes each request's headers and body, calls the
/// service, and encodes the result or the error as a response.
enum NameServerRequestHandlers {
    /// Registers a handler for every ``NameServerRequestCode`` on `server`.
    static func register(on server: RemotingServer, service: any NameServerClient) {
        server.register(code: NameServerRequestCode.putKVConfig) { request, _ in
            try await run(request) {
                try await service.putKV(
                    namespace: try header(request, NameServerHeader.namespace), key: try header(request, NameServerHeader.key), value: request.bodyString
                )
                return .response(to: request)
            }
        }
        server.register(code: NameServerRequestCode.getKVConfig) { request, _ in
            try await run(request) {
                let namespace = try header(request, NameServerHeader.namespace)
                let key = try header(request, NameServerHeader.key)
                guard let value = try await service.getKV(namespace: namespace, key: key) else {
                    return .response(to: request, code: .keyNotFound, remark: "key \(key) not found in namespace \(namespace)")
                }
                return .response(to: request, body: ByteBuffer(string: value))
            }
        }
        server.register(code: NameServerRequestCode.deleteKVConfig) { request, _ in
            try await run(request) {
                let namespace = try header(request, NameServerHeader.namespace)
                let key = try header(request, NameServerHeader.key)
                guard try await service.deleteKV(namespace: namespace, key: key) else {
                    return .response(to: request, code: .keyNotFound, remark: "key \(key) not found in namespace \(namespace)")
                }
                return .response(to: request)
            }
        }
        server.register(code: NameServerRequestCode.getKVListByNamespace) { request, _ in
            try await run(request) {
                let namespace = try header(request, NameServerHeader.namespace)
                let table = try await service.listKV(namespace: namespace)
                guard !table.isEmpty else {
                    return .response(to: request, code: .namespaceNotFound, remark: "namespace \(namespace) not found (it has no keys)")
                }
                return .response(to: request, body: try json(KVTable(table: table)))
            }
        }
        server.register(code: NameServerRequestCode.updateAndCreateTopic) { request, _ in
            try await run(request) {
                let topic = try header(request, NameServerHeader.topic)
                let target: TopicTarget
                switch (request.headers[NameServerHeader.storeAddress], request.headers[NameServerHeader.cluster]) {
                case (nil, nil): target = .none
                case (let address?, nil): target = .storeAddress(address)
                case (nil, let cluster?): target = .cluster(cluster)
                case (.some, .some): throw NameServerError.invalidArgument("give a store address or a cluster, not both")
                }
                let route = try await service.updateTopic(topic, target: target)
                return .response(to: request, body: try json(route))
            }
        }
        server.register(code: NameServerRequestCode.deleteTopic) { request, _ in
            try await run(request) {
                try await service.deleteTopic(try header(request, NameServerHeader.topic))
                return .response(to: request)
            }
        }
        server.register(code: NameServerRequestCode.getAllTopicList) { request, _ in
            try await run(request) {
                .response(to: request, body: try json(TopicList(topicList: try await service.topicList())))
            }
        }
        server.register(code: NameServerRequestCode.getRouteInfoByTopic) { request, _ in
            try await run(request) {
                .response(to: request, body: try json(try await service.topicRoute(try header(request, NameServerHeader.topic))))
            }
        }
        server.register(code: NameServerRequestCode.registerNode) { request, _ in
            try await run(request) {
                let node = NodeInfo(
                    kind: try kind(request),
                    address: try header(request, NameServerHeader.address),
                    name: request.headers[NameServerHeader.name] ?? "",
                    cluster: request.headers[NameServerHeader.cluster] ?? ""
                )
                try await service.registerNode(node)
                return .response(to: request)
            }
        }
        server.register(code: NameServerRequestCode.nodeHeartbeat) { request, _ in
            try await run(request) {
                try await service.heartbeat(kind: try kind(request), address: try header(request, NameServerHeader.address))
                return .response(to: request)
            }
        }
        server.register(code: NameServerRequestCode.unregisterNode) { request, _ in
            try await run(request) {
                let kind = try kind(request)
                let address = try header(request, NameServerHeader.address)
                guard try await service.unregisterNode(kind: kind, address: address) else {
                    throw NameServerError.nodeNotRegistered(kind: kind, address: address)
                }
                return .response(to: request)
            }
        }
        server.register(code: NameServerRequestCode.getNodeList) { request, _ in
            try await run(request) {
                .response(to: request, body: try json(try await service.listNodes(kind: try kind(request))))
            }
        }
    }

    /// Runs `body`, answering a ``NameServerError`` with its response code.
    private static func run(_ request: RemotingCommand, _ body: () async throws -> RemotingCommand) async throws -> RemotingCommand {
        do {
            return try await body()
        } catch let error as NameServerError {
            let code: RemotingResponseCode
            switch error {
            case .invalidArgument: code = .invalidParameter
            case .topicNotFound: code = .topicNotExist
            case .clusterNotFound: code = .clusterNotFound
            case .nodeNotRegistered: code = .nodeNotRegistered
            case .notRunning: code = .serviceNotAvailable
            case .storageFailed, .unavailable, .unexpectedResponse: code = .systemError
            }
            return .response(to: request, code: code, remark: error.description)
        }
    }

    private static func header(_ request: RemotingCommand, _ name: String) throws(NameServerError) -> String {
        guard let value = request.headers[name] else { throw .invalidArgument("header \(name) is missing") }
        return value
    }

    private static func kind(_ request: RemotingCommand) throws(NameServerError) -> NodeKind {
        let text = try header(request, NameServerHeader.kind)
        guard let kind = NodeKind(rawValue: text) else {
            throw .invalidArgument("node kind \"\(text)\" is not one of \(NodeKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return kind
    }

    static func json(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ByteBuffer(bytes: try encoder.encode(value))
    }
}

/// The body of a `GET_KVLIST_BY_NAMESPACE` response (RocketMQ's `KVTable`).
struct KVTable: Codable {
    var table: [String: String]
}

/// The body of a `GET_ALL_TOPIC_LIST` response (RocketMQ's `TopicList`).
struct TopicList: Codable {
    var topicList: [String]
}
