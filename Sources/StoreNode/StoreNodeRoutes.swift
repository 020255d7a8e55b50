import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NameServer
import Remoting

/// Which store node holds each first topic, in a cluster with several store nodes (docs/cluster.md), as
/// gateways and server applications (`LMQClient`) see it.
///
/// - The *primary* store node (a gateway's first, `storeNodeAddress` or the first registered) holds the
///   sessions, offsets, retained messages and peer-to-peer queues, first topics without a route, and the
///   queues of filters whose first level is a wildcard (`+/x`, `#`): such a filter spans store nodes.
/// - A first topic whose route (`mqadmin updateTopic -b`) names a store node is stored there: its topic
///   queues and the queues of filters under it (`a/+`).
///
/// Routes are learnt from the name servers before a first topic is used (the PUBLISH or SUBSCRIBE waits),
/// and learnt again every ``refreshSeconds``. A queue's first level is read from its LMQ name (`%LMQ%a%...`);
/// a first topic containing `%` is read wrongly (it is stored on the primary).
public final class StoreNodeRoutes: Sendable {
    public static let refreshSeconds = 30

    public let primary: StoreNodeClient
    private let nameServers: [any NameServerClient]
    private let makeClient: @Sendable (RemotingAddress) -> StoreNodeClient
    private let logger: Logger

    private struct State {
        /// First topic → address of its store node.
        var routes: [String: String] = [:]
        /// Address → client, the primary's included.
        var nodes: [String: StoreNodeClient] = [:]
        /// Run on every node's client, those to come included (`onEveryNode`).
        var setUps: [@Sendable (StoreNodeClient) -> Void] = []
    }

    private let state: NIOLockedValueBox<State>

    public init(
        primary: StoreNodeClient, nameServers: [any NameServerClient], logger: Logger,
        makeClient: @escaping @Sendable (RemotingAddress) -> StoreNodeClient
    ) {
        self.primary = primary
        self.nameServers = nameServers
        self.logger = logger
        self.makeClient = makeClient
        state = NIOLockedValueBox(State(nodes: ["\(primary.address)": primary]))
    }

    /// The first level of a topic name.
    public static func firstLevel(ofTopic topic: String) -> String {
        String(topic.prefix { $0 != "/" })
    }

    /// The first level of an LMQ name (`%LMQ%a%b%` → `a`; a peer-to-peer queue's is empty).
    public static func firstLevel(ofQueue queue: String) -> String {
        String(queue.dropFirst(LMQNaming.prefix.count).prefix { $0 != "%" })
    }

    /// First levels kept on the primary whatever the routes say.
    private static func isPrimaryLevel(_ level: String) -> Bool {
        level.isEmpty || level == "+" || level == "#"
    }

    /// The node of `firstTopic`; nil while its route is not known.
    public func node(forFirstTopic firstTopic: String) -> StoreNodeClient? {
        if Self.isPrimaryLevel(firstTopic) || nameServers.isEmpty { return primary }
        return state.withLockedValue { state in state.routes[firstTopic].flatMap { state.nodes[$0] } }
    }

    public func node(forQueue queue: String) -> StoreNodeClient? {
        node(forFirstTopic: Self.firstLevel(ofQueue: queue))
    }

    /// Runs `setUp` on the client of every store node, now and as nodes are added.
    public func onEveryNode(_ setUp: @escaping @Sendable (StoreNodeClient) -> Void) {
        let nodes = state.withLockedValue { state in
            state.setUps.append(setUp)
            return Array(state.nodes.values)
        }
        for node in nodes { setUp(node) }
    }

    /// Whether this gateway talks to store nodes other than the primary (checked per PUBLISH: no copy).
    public var hasOtherNodes: Bool { state.withLockedValue { $0.nodes.count > 1 } }

    /// Every store node this gateway talks to.
    public var allNodes: [StoreNodeClient] { state.withLockedValue { Array($0.nodes.values) } }

    /// Those of `firstTopics` whose route is not known yet.
    public func unknown(_ firstTopics: [String]) -> [String] {
        guard !nameServers.isEmpty else { return [] }
        return state.withLockedValue { state in
            firstTopics.filter { !Self.isPrimaryLevel($0) && state.routes[$0] == nil }
        }
    }

    /// Learns the routes of `firstTopics` from the name servers (the first that answers).
    public func learn(_ firstTopics: [String]) async throws {
        for firstTopic in Set(firstTopics) where !Self.isPrimaryLevel(firstTopic) {
            let address = try await lookUp(firstTopic)
            state.withLockedValue { state in
                if state.routes[firstTopic] != address, state.routes[firstTopic] != nil {
                    logger.info("first topic \(firstTopic) moved to store node \(address)")
                }
                state.routes[firstTopic] = address
                if state.nodes[address] == nil, let parsed = RemotingAddress(parsing: address) {
                    let node = makeClient(parsed)
                    for setUp in state.setUps { setUp(node) }
                    state.nodes[address] = node
                }
            }
        }
    }

    /// Learns every known route again (an operator may have moved a first topic) — unless the cluster has
    /// one store node, where every route leads to it: then this costs one request, not one per first topic.
    public func refresh() async {
        var storeNodes = 0
        for nameServer in nameServers {
            guard let nodes = try? await nameServer.listNodes(kind: .store) else { continue }
            storeNodes = nodes.count
            break
        }
        guard storeNodes > 1 else { return }
        let known = state.withLockedValue { Array($0.routes.keys) }
        do {
            try await learn(known)
        } catch {
            logger.warning("refreshing the routes of \(known.count) first topics failed: \(error)")
        }
    }

    private func lookUp(_ firstTopic: String) async throws -> String {
        var lastError: (any Error)?
        for nameServer in nameServers {
            do {
                let route = try await nameServer.topicRoute(firstTopic)
                // A route without a store node (created by a gateway of an older version, or by hand): the primary.
                return route.storeAddresses.sorted().first ?? "\(primary.address)"
            } catch .topicNotFound {
                return "\(primary.address)"
            } catch {
                lastError = error
            }
        }
        throw lastError ?? NameServerError.topicNotFound(firstTopic)
    }

    /// Closes the clients of the store nodes other than the primary (whose owner closes it).
    public func closeOthers() async {
        let others = state.withLockedValue { state in state.nodes.values.filter { $0 !== primary } }
        for node in others { try? await node.close() }
    }
}
