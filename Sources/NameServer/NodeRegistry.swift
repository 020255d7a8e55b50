/// The nodes that have registered and keep sending heartbeats. A pure value: time comes in as a
/// parameter, so expiry is tested without waiting.
///
/// A node is identified by its kind and address. It is live while its last registration or heartbeat
/// is at most ``expiry`` old; ``expire(now:)`` removes the others (the name server runs it periodically),
/// and listings never show them even before that.
public struct NodeRegistry: Sendable {
    public typealias Instant = ContinuousClock.Instant

    private struct Key: Hashable {
        var kind: NodeKind
        var address: String
    }

    private struct Entry {
        var node: NodeInfo
        var registeredAt: Instant
        var lastHeartbeat: Instant
    }

    /// What ``register(_:now:)`` did.
    public enum Registration: Sendable, Hashable {
        /// The node was not registered.
        case added
        /// The node was registered with the same name and cluster; its heartbeat is refreshed.
        case refreshed
        /// A node with this kind and address was registered under another name or cluster, which is replaced.
        case replaced(previous: NodeInfo)
        /// The registry holds its maximum number of nodes.
        case full(limit: Int)
    }

    /// How long a node may be silent before it expires.
    public let expiry: Duration
    /// The most nodes the registry holds.
    public let maxNodeCount: Int
    private var entries: [Key: Entry] = [:]

    public init(expiry: Duration, maxNodeCount: Int = NameServerLimits().maxNodeCount) {
        precondition(expiry > .zero, "expiry must be positive")
        self.expiry = expiry
        self.maxNodeCount = maxNodeCount
    }

    /// The number of nodes held, live or not yet expired.
    public var count: Int { entries.count }

    /// Adds `node`, or refreshes it if it is registered: registering again is also a heartbeat.
    public mutating func register(_ node: NodeInfo, now: Instant) -> Registration {
        let key = Key(kind: node.kind, address: node.address)
        if var entry = entries[key], isLive(entry, now: now) {
            let previous = entry.node
            entry.node = node
            entry.lastHeartbeat = now
            entries[key] = entry
            return previous == node ? .refreshed : .replaced(previous: previous)
        }
        entries[key] = nil
        guard entries.count < maxNodeCount else { return .full(limit: maxNodeCount) }
        entries[key] = Entry(node: node, registeredAt: now, lastHeartbeat: now)
        return .added
    }

    /// Records a heartbeat; `false` when the node is not registered (or has expired), in which case it
    /// must register again.
    public mutating func heartbeat(kind: NodeKind, address: String, now: Instant) -> Bool {
        let key = Key(kind: kind, address: address)
        guard var entry = entries[key] else { return false }
        guard isLive(entry, now: now) else {
            entries[key] = nil
            return false
        }
        entry.lastHeartbeat = now
        entries[key] = entry
        return true
    }

    /// Removes a node that is shutting down; returns it, or `nil` when it was not registered.
    public mutating func unregister(kind: NodeKind, address: String) -> NodeInfo? {
        entries.removeValue(forKey: Key(kind: kind, address: address))?.node
    }

    /// Removes every node silent for longer than ``expiry`` and returns them with their silence.
    public mutating func expire(now: Instant) -> [(node: NodeInfo, silence: Duration)] {
        var expired: [(node: NodeInfo, silence: Duration)] = []
        for (key, entry) in entries where !isLive(entry, now: now) {
            expired.append((entry.node, now - entry.lastHeartbeat))
            entries[key] = nil
        }
        return expired.sorted { ($0.node.kind.rawValue, $0.node.address) < ($1.node.kind.rawValue, $1.node.address) }
    }

    /// The live nodes of `kind`, sorted by cluster, name and address.
    public func nodes(kind: NodeKind, now: Instant) -> [NodeStatus] {
        entries.values
            .filter { $0.node.kind == kind && isLive($0, now: now) }
            .sorted { ($0.node.cluster, $0.node.name, $0.node.address) < ($1.node.cluster, $1.node.name, $1.node.address) }
            .map { entry in
                NodeStatus(
                    node: entry.node,
                    lastHeartbeatAgeMilliseconds: (now - entry.lastHeartbeat).milliseconds,
                    registeredAgeMilliseconds: (now - entry.registeredAt).milliseconds
                )
            }
    }

    /// The addresses of the live store nodes of `cluster`, sorted.
    public func storeAddresses(inCluster cluster: String, now: Instant) -> [String] {
        nodes(kind: .store, now: now).filter { $0.node.cluster == cluster }.map(\.node.address).sorted()
    }

    private func isLive(_ entry: Entry, now: Instant) -> Bool {
        now - entry.lastHeartbeat <= expiry
    }
}

extension Duration {
    /// Whole milliseconds, rounded down; negative durations (a clock read out of order) count as 0.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return max(0, seconds * 1_000 + attoseconds / 1_000_000_000_000_000)
    }
}
