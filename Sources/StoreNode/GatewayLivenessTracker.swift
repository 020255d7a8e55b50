import LMQStore

/// Decides which sessions a dead gateway left behind, from what the name servers list and what the
/// session records say. A pure value: the live gateways, the records and the time come in, the orphaned
/// sessions go out; ``GatewayLivenessMonitor`` does the I/O.
///
/// A gateway counts as dead once it is missing from the name servers' lists in ``Settings/minimumMissedRounds``
/// successful checks in a row *and* for at least ``Settings/minimumMissingDuration`` since the first of
/// them. The duration is what keeps live gateways alive when the registry forgets them for a while: a name
/// server that restarted lists no gateway until each heartbeats again (every 10 s), and one whose node
/// expiry is shorter than the gateways' heartbeat interval drops them between beats.
///
/// Sessions whose record names no gateway are never touched: nothing says where their connection is.
public struct GatewayLivenessTracker: Sendable {
    public typealias Instant = ContinuousClock.Instant

    /// When a gateway counts as dead.
    public struct Settings: Sendable, Hashable {
        /// Successful checks in a row that must all miss the gateway. Default: 2.
        public var minimumMissedRounds: Int
        /// How long the gateway must have been missing, from the first missed check. Default: 15 s, more
        /// than a gateway's 10 s heartbeat interval.
        public var minimumMissingDuration: Duration
        /// The most checks in a row that may skip reading the session records while the live gateways stay
        /// the same and none is missing (``checkWithoutSessions(liveGateways:)``). Default: 10.
        public var maximumChecksWithoutSessions: Int

        public init(minimumMissedRounds: Int = 2, minimumMissingDuration: Duration = .seconds(15), maximumChecksWithoutSessions: Int = 10) {
            precondition(minimumMissedRounds >= 1, "a gateway must be missed at least once")
            precondition(minimumMissingDuration >= .zero, "the missing duration cannot be negative")
            precondition(maximumChecksWithoutSessions >= 0, "the checks without sessions cannot be negative")
            self.minimumMissedRounds = minimumMissedRounds
            self.minimumMissingDuration = minimumMissingDuration
            self.maximumChecksWithoutSessions = maximumChecksWithoutSessions
        }
    }

    /// A session left behind by a dead gateway, and what is owed to it.
    public enum Orphan: Sendable, Hashable {
        /// The session's connection was open on `gateway`: it is lost, as if the network had failed.
        case connectionLost(clientIdentifier: String, gateway: String)
        /// The connection had closed on `gateway`, whose will was still waiting for its delay there.
        case willWaiting(clientIdentifier: String, gateway: String, disconnectedAtMillis: Int64)
    }

    /// A gateway missing from the lists, since when.
    public struct Miss: Sendable, Hashable {
        public var rounds: Int
        public var since: Instant
    }

    public let settings: Settings
    /// The gateways named by session records that were missing in the last successful check.
    public private(set) var misses: [String: Miss] = [:]
    /// Wills already handed over (the `disconnectedAtMillis` they are counted from), by client identifier,
    /// so that a waiting will is scheduled once.
    private var scheduledWills: [String: Int64] = [:]
    /// The live gateways when the session records were last read, and the checks since.
    private var liveAtLastRead: Set<String>?
    private var checksWithoutSessions = 0

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// One successful check: `liveGateways` is the union of what the name servers that answered list.
    /// Returns the sessions to act on, each once per lost connection or waiting will (a session returned
    /// as ``Orphan/connectionLost(clientIdentifier:gateway:)`` is returned again only if it is still
    /// connected on the dead gateway at the next check, i.e. acting on it failed).
    public mutating func checked(liveGateways: Set<String>, sessions: [SessionRecord], now: Instant) -> [Orphan] {
        liveAtLastRead = liveGateways
        checksWithoutSessions = 0
        var named: Set<String> = []
        for record in sessions {
            guard let gateway = record.gatewayNode, record.disconnectedAtMillis == nil || record.will != nil else { continue }
            named.insert(gateway)
        }
        var nextMisses: [String: Miss] = [:]
        for gateway in named where !liveGateways.contains(gateway) {
            var miss = misses[gateway] ?? Miss(rounds: 0, since: now)
            miss.rounds += 1
            nextMisses[gateway] = miss
        }
        misses = nextMisses
        let dead = Set(misses.filter { isDead($0.value, now: now) }.keys)

        var orphans: [Orphan] = []
        var stillScheduled: [String: Int64] = [:]
        for record in sessions {
            let clientIdentifier = record.clientIdentifier
            if let disconnectedAt = record.disconnectedAtMillis, record.will != nil, scheduledWills[clientIdentifier] == disconnectedAt {
                // Handed over already; remembered while the record still shows that will waiting.
                stillScheduled[clientIdentifier] = disconnectedAt
                continue
            }
            guard let gateway = record.gatewayNode, dead.contains(gateway) else { continue }
            switch record.disconnectedAtMillis {
            case nil:
                orphans.append(.connectionLost(clientIdentifier: clientIdentifier, gateway: gateway))
            case .some(let disconnectedAt):
                guard record.will != nil else { continue }
                orphans.append(.willWaiting(clientIdentifier: clientIdentifier, gateway: gateway, disconnectedAtMillis: disconnectedAt))
                stillScheduled[clientIdentifier] = disconnectedAt
            }
        }
        scheduledWills = stillScheduled
        return orphans
    }

    /// Whether a successful check with `liveGateways` can be done without reading the session records:
    /// when the live gateways are those of the last read and none was missing then, no session can have
    /// been orphaned since — but for records written after that read by a gateway that died right after,
    /// which a read at least every ``Settings/maximumChecksWithoutSessions`` checks finds. Counts the check
    /// when it returns `true`; when `false`, read the records and call ``checked(liveGateways:sessions:now:)``.
    public mutating func checkWithoutSessions(liveGateways: Set<String>) -> Bool {
        guard liveGateways == liveAtLastRead, misses.isEmpty, checksWithoutSessions < settings.maximumChecksWithoutSessions else {
            return false
        }
        checksWithoutSessions += 1
        return true
    }

    /// A lost connection's session was marked disconnected at `disconnectedAtMillis` and its will handed to
    /// the scheduler: the next checks do not return it as ``Orphan/willWaiting(clientIdentifier:gateway:disconnectedAtMillis:)``.
    public mutating func willScheduled(clientIdentifier: String, disconnectedAtMillis: Int64) {
        scheduledWills[clientIdentifier] = disconnectedAtMillis
    }

    /// Whether `gateway` counts as dead after the last check.
    public func isDead(_ gateway: String, now: Instant) -> Bool {
        misses[gateway].map { isDead($0, now: now) } ?? false
    }

    private func isDead(_ miss: Miss, now: Instant) -> Bool {
        miss.rounds >= settings.minimumMissedRounds && now - miss.since >= settings.minimumMissingDuration
    }

    // MARK: Wills

    /// How long after the connection closed a will is published: its Will Delay Interval, capped by the
    /// session's expiry (§3.1.3.2.2: the will goes when the session ends, if that comes first).
    public static func willDelaySeconds(_ will: StoredWill, sessionExpiryIntervalSeconds: UInt32) -> UInt32 {
        min(will.delayIntervalSeconds, sessionExpiryIntervalSeconds)
    }

    /// The will to publish when a will scheduled for the connection that closed at `disconnectedAtMillis`
    /// is due, given the session record as read now (`nil`: there is none).
    ///
    /// - The record still shows that disconnection: its will, if it still has one ([MQTT-3.1.3-9]: a
    ///   connection of the client meanwhile cancels it; it would have set another disconnection time or none).
    /// - No record: the session ended. When the delay was capped by the session's expiry, it ended because
    ///   it expired, which is when the will is due: `scheduled`. Otherwise something else ended it (a new
    ///   connection with Clean Start): nothing.
    public static func willDue(
        record: SessionRecord?, scheduled: StoredWill, disconnectedAtMillis: Int64, sessionExpiryIntervalSeconds: UInt32
    ) -> StoredWill? {
        guard let record else {
            return scheduled.delayIntervalSeconds >= sessionExpiryIntervalSeconds ? scheduled : nil
        }
        guard record.disconnectedAtMillis == disconnectedAtMillis else { return nil }
        return record.will
    }
}
