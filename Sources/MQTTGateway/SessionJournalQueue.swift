import LMQStore
import MQTTCore

/// Orders a persistent session's writes to the store against the packets that depend on them, without I/O.
///
/// Some packets may only be written once a session change is durable: the PUBLISH of a QoS 2 delivery after
/// its packet identifier is recorded, PUBREL after the release, PUBCOMP after the inbound identifier is
/// released, SUBACK after the subscription is stored ([MQTT-4.3.3], [MQTT-4.4.0-1]). Such entries are
/// *barriers*: every packet after one waits until a commit containing it is done. *Lazy* entries (consume
/// offsets, finished deliveries) hold nothing back. Entries are batched: everything recorded while a commit
/// is in flight goes into the next one, so a busy connection makes one transaction per round trip to the
/// database rather than one per packet.
struct SessionJournalQueue {
    /// Something that waits for a commit.
    enum Held {
        case packet(MQTTPacket)
        /// Close the connection (after the packets before it).
        case close(ServerConnectionStateMachine.CloseReason)
        /// Run once everything before it is durable.
        case callback(@Sendable () -> Void)
        /// Marks where the entries of the next commit begin: what follows waits for that commit too.
        case barrier
    }

    private var entries: [SessionJournalEntry] = []
    /// Some of `entries` are barriers.
    private var entriesHoldPackets = false
    private var held: [Held] = []
    /// A commit was handed out by `beginCommit` and not finished.
    private(set) var commitInFlight = false
    private var commitInFlightHoldsPackets = false

    /// Whether a packet written now would overtake an entry it depends on (or a packet held before it).
    var holdsPackets: Bool {
        entriesHoldPackets || (commitInFlight && commitInFlightHoldsPackets) || !held.isEmpty
    }

    /// Whether there is nothing to commit and nothing waiting.
    var isIdle: Bool { entries.isEmpty && held.isEmpty && !commitInFlight }

    /// Records a change that the packets written after it depend on.
    mutating func recordBarrier(_ entry: SessionJournalEntry) {
        if commitInFlight, !entriesHoldPackets {
            // Later packets wait for the next commit, not only the one in flight.
            held.append(.barrier)
        }
        entries.append(entry)
        entriesHoldPackets = true
    }

    /// Records a change nothing waits for.
    mutating func recordLazily(_ entry: SessionJournalEntry) {
        entries.append(entry)
    }

    /// Queues `step` behind the entries it depends on; returns false when it can go out now (nothing is held).
    mutating func hold(_ step: Held) -> Bool {
        guard holdsPackets else { return false }
        held.append(step)
        return true
    }

    /// The entries of the next commit, or nil when a commit is in flight or there is nothing to commit.
    mutating func beginCommit() -> [SessionJournalEntry]? {
        guard !commitInFlight, !entries.isEmpty else { return nil }
        commitInFlight = true
        commitInFlightHoldsPackets = entriesHoldPackets
        entriesHoldPackets = false
        defer { entries = [] }
        return entries
    }

    /// The commit is durable: returns what may now go out, in order (markers removed).
    mutating func commitFinished() -> [Held] {
        precondition(commitInFlight, "commitFinished without a commit in flight")
        commitInFlight = false
        commitInFlightHoldsPackets = false
        // A barrier recorded while this commit was in flight left a marker; what is before it is free now.
        guard let barrier = held.firstIndex(where: { if case .barrier = $0 { return true } else { return false } }) else {
            defer { held = [] }
            return held
        }
        let released = Array(held[..<barrier])
        held.removeFirst(barrier + 1)
        return released
    }

    /// The commit failed: nothing held may go out. Returns the callbacks, which must still run (they
    /// complete waits on this session), and forgets everything else.
    mutating func commitFailed() -> [@Sendable () -> Void] {
        commitInFlight = false
        commitInFlightHoldsPackets = false
        entries = []
        entriesHoldPackets = false
        defer { held = [] }
        return held.compactMap { if case .callback(let callback) = $0 { return callback } else { return nil } }
    }
}
