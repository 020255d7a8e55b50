import LMQStore
import MQTTCore
import NIOCore
import StoreNode
import Testing

@Suite("GatewayLivenessTracker: which sessions a dead gateway left behind")
struct GatewayLivenessTrackerTests {
    private static let start = ContinuousClock.now
    private static func at(_ seconds: Int) -> ContinuousClock.Instant { start + .seconds(seconds) }

    private static let will = StoredWill(topic: "wills/a", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce)

    private static func connected(_ clientIdentifier: String, on gateway: String?, will: StoredWill? = nil, expirySeconds: UInt32 = 0) -> SessionRecord {
        SessionRecord(
            clientIdentifier: clientIdentifier, protocolVersion: .v5, will: will, sessionExpiryIntervalSeconds: expirySeconds,
            gatewayNode: gateway
        )
    }

    private static func disconnected(_ clientIdentifier: String, on gateway: String, at millis: Int64, will: StoredWill?) -> SessionRecord {
        SessionRecord(
            clientIdentifier: clientIdentifier, protocolVersion: .v5, will: will, sessionExpiryIntervalSeconds: 3_600,
            disconnectedAtMillis: millis, gatewayNode: gateway
        )
    }

    private static func tracker(rounds: Int = 2, missingSeconds: Int = 5) -> GatewayLivenessTracker {
        GatewayLivenessTracker(settings: .init(minimumMissedRounds: rounds, minimumMissingDuration: .seconds(missingSeconds)))
    }

    @Test("a gateway missing in two checks in a row, for the missing duration, loses its connected sessions")
    func deadAfterTwoChecksAndTheDuration() {
        var tracker = Self.tracker()
        let sessions = [Self.connected("a", on: "gw0:1883", will: Self.will), Self.connected("b", on: "gw1:1883")]
        #expect(tracker.checked(liveGateways: ["gw0:1883", "gw1:1883"], sessions: sessions, now: Self.at(0)) == [])
        // gw0 disappears: one miss is not enough, nor two within the duration.
        #expect(tracker.checked(liveGateways: ["gw1:1883"], sessions: sessions, now: Self.at(3)) == [])
        #expect(tracker.checked(liveGateways: ["gw1:1883"], sessions: sessions, now: Self.at(6)) == [])
        #expect(tracker.misses["gw0:1883"]?.rounds == 2)
        #expect(tracker.checked(liveGateways: ["gw1:1883"], sessions: sessions, now: Self.at(8)) == [
            .connectionLost(clientIdentifier: "a", gateway: "gw0:1883"),
        ])
        #expect(tracker.isDead("gw0:1883", now: Self.at(8)))
        #expect(!tracker.isDead("gw1:1883", now: Self.at(8)))
    }

    @Test("two checks in a row are needed even after a long time")
    func twoChecksNeeded() {
        var tracker = Self.tracker(missingSeconds: 0)
        let sessions = [Self.connected("a", on: "gw0:1883")]
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(0)) == [])
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(1)) == [.connectionLost(clientIdentifier: "a", gateway: "gw0:1883")])
    }

    @Test("a gateway that comes back between misses starts over: a registry that forgets it for a while kills nothing")
    func flappingGatewayStaysAlive() {
        var tracker = Self.tracker(missingSeconds: 6)
        let sessions = [Self.connected("a", on: "gw0:1883", will: Self.will, expirySeconds: 60)]
        // Listed 0...5 s, missing 6...9 s, listed again at 10 s (a 10 s heartbeat and a 6 s expiry), for a minute.
        for second in 0..<60 {
            let listed = second % 10 < 6
            let orphans = tracker.checked(liveGateways: listed ? ["gw0:1883"] : [], sessions: sessions, now: Self.at(second))
            #expect(orphans == [], "second \(second)")
        }
    }

    @Test("the missing duration counts from the first of the consecutive misses")
    func durationFromFirstMiss() {
        var tracker = Self.tracker(missingSeconds: 5)
        let sessions = [Self.connected("a", on: "gw0:1883")]
        _ = tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(0))
        _ = tracker.checked(liveGateways: ["gw0:1883"], sessions: sessions, now: Self.at(4))
        #expect(tracker.misses.isEmpty)
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(5)) == [])
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(9)) == [])
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(10)) == [.connectionLost(clientIdentifier: "a", gateway: "gw0:1883")])
    }

    @Test("sessions that are disconnected without a will, or name no gateway, are never orphaned")
    func leftAlone() {
        var tracker = Self.tracker(missingSeconds: 0)
        let sessions = [
            Self.disconnected("gone", on: "gw0:1883", at: 1_000, will: nil),
            Self.connected("nowhere", on: nil, will: Self.will),
        ]
        for second in 0..<5 {
            #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(second)) == [])
        }
        // Nothing to release on gw0, so it is not even tracked.
        #expect(tracker.misses.isEmpty)
    }

    @Test("a session that moved to a live gateway, or reconnected, is not orphaned")
    func movedSession() {
        var tracker = Self.tracker(missingSeconds: 0)
        _ = tracker.checked(liveGateways: ["gw1:1883"], sessions: [Self.connected("a", on: "gw0:1883")], now: Self.at(0))
        // By the second check the client is connected on gw1.
        #expect(tracker.checked(liveGateways: ["gw1:1883"], sessions: [Self.connected("a", on: "gw1:1883")], now: Self.at(1)) == [])
        #expect(tracker.misses.isEmpty)
    }

    @Test("a lost connection is returned again while it is still connected on the dead gateway (acting on it failed)")
    func retriedUntilReleased() {
        var tracker = Self.tracker(missingSeconds: 0)
        let sessions = [Self.connected("a", on: "gw0:1883")]
        _ = tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(0))
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(1)).count == 1)
        #expect(tracker.checked(liveGateways: [], sessions: sessions, now: Self.at(2)).count == 1)
        // Released: disconnected, its will scheduled; the will is not handed over a second time.
        tracker.willScheduled(clientIdentifier: "a", disconnectedAtMillis: 5_000)
        let released = [Self.disconnected("a", on: "gw0:1883", at: 5_000, will: Self.will)]
        #expect(tracker.checked(liveGateways: [], sessions: released, now: Self.at(3)) == [])
        #expect(tracker.checked(liveGateways: [], sessions: released, now: Self.at(4)) == [])
    }

    @Test("a will waiting on a gateway that died is handed over once per disconnection")
    func waitingWillAdoptedOnce() {
        var tracker = Self.tracker(missingSeconds: 0)
        let waiting = [Self.disconnected("a", on: "gw0:1883", at: 1_000, will: Self.will)]
        #expect(tracker.checked(liveGateways: [], sessions: waiting, now: Self.at(0)) == [])
        #expect(tracker.checked(liveGateways: [], sessions: waiting, now: Self.at(1)) == [
            .willWaiting(clientIdentifier: "a", gateway: "gw0:1883", disconnectedAtMillis: 1_000),
        ])
        #expect(tracker.checked(liveGateways: [], sessions: waiting, now: Self.at(2)) == [])
        // Published (the will is gone from the record): nothing left on gw0, which is no longer tracked.
        #expect(tracker.checked(liveGateways: [], sessions: [Self.disconnected("a", on: "gw0:1883", at: 1_000, will: nil)], now: Self.at(3)) == [])
        #expect(tracker.misses.isEmpty)
        // Another disconnection with a will recorded under the same address: handed over again, after two
        // checks that miss the gateway.
        let again = [Self.disconnected("a", on: "gw0:1883", at: 9_000, will: Self.will)]
        #expect(tracker.checked(liveGateways: [], sessions: again, now: Self.at(4)) == [])
        #expect(tracker.checked(liveGateways: [], sessions: again, now: Self.at(5)) == [
            .willWaiting(clientIdentifier: "a", gateway: "gw0:1883", disconnectedAtMillis: 9_000),
        ])
    }

    @Test("a will waiting on a live gateway is that gateway's")
    func waitingWillOfLiveGateway() {
        var tracker = Self.tracker(missingSeconds: 0)
        let waiting = [Self.disconnected("a", on: "gw0:1883", at: 1_000, will: Self.will)]
        for second in 0..<4 {
            #expect(tracker.checked(liveGateways: ["gw0:1883"], sessions: waiting, now: Self.at(second)) == [])
        }
    }

    /// `checkWithoutSessions`, called outside `#expect` (which cannot call a mutating method).
    private static func skipsRead(_ tracker: inout GatewayLivenessTracker, _ live: Set<String>) -> Bool {
        tracker.checkWithoutSessions(liveGateways: live)
    }

    @Test("the session records are read when the live gateways change, while one is missing, and every few checks")
    func sessionReads() {
        var tracker = GatewayLivenessTracker(settings: .init(minimumMissingDuration: .seconds(5), maximumChecksWithoutSessions: 3))
        let sessions = [Self.connected("a", on: "gw0:1883"), Self.connected("b", on: "gw1:1883")]
        // Nothing read yet.
        #expect(!Self.skipsRead(&tracker, ["gw0:1883", "gw1:1883"]))
        _ = tracker.checked(liveGateways: ["gw0:1883", "gw1:1883"], sessions: sessions, now: Self.at(0))
        // The same gateways: three checks skip the read, the fourth reads.
        #expect(Self.skipsRead(&tracker, ["gw0:1883", "gw1:1883"]))
        #expect(Self.skipsRead(&tracker, ["gw0:1883", "gw1:1883"]))
        #expect(Self.skipsRead(&tracker, ["gw0:1883", "gw1:1883"]))
        #expect(!Self.skipsRead(&tracker, ["gw0:1883", "gw1:1883"]))
        _ = tracker.checked(liveGateways: ["gw0:1883", "gw1:1883"], sessions: sessions, now: Self.at(4))
        // A gateway appears or disappears: read.
        #expect(!Self.skipsRead(&tracker, ["gw0:1883", "gw1:1883", "gw2:1883"]))
        #expect(!Self.skipsRead(&tracker, ["gw1:1883"]))
        _ = tracker.checked(liveGateways: ["gw1:1883"], sessions: sessions, now: Self.at(5))
        // gw0 is missing: every check reads, even with the same live set, until it is released.
        #expect(!Self.skipsRead(&tracker, ["gw1:1883"]))
        #expect(tracker.checked(liveGateways: ["gw1:1883"], sessions: sessions, now: Self.at(10)) == [
            .connectionLost(clientIdentifier: "a", gateway: "gw0:1883"),
        ])
        let released = [Self.disconnected("a", on: "gw0:1883", at: 1_000, will: nil), Self.connected("b", on: "gw1:1883")]
        #expect(!Self.skipsRead(&tracker, ["gw1:1883"]))
        #expect(tracker.checked(liveGateways: ["gw1:1883"], sessions: released, now: Self.at(11)) == [])
        #expect(Self.skipsRead(&tracker, ["gw1:1883"]))
    }

    @Test("the delay of a will is its Will Delay Interval capped by the session expiry")
    func willDelay() {
        var will = Self.will
        will.delayIntervalSeconds = 30
        #expect(GatewayLivenessTracker.willDelaySeconds(will, sessionExpiryIntervalSeconds: 60) == 30)
        #expect(GatewayLivenessTracker.willDelaySeconds(will, sessionExpiryIntervalSeconds: 10) == 10)
        #expect(GatewayLivenessTracker.willDelaySeconds(will, sessionExpiryIntervalSeconds: 0) == 0)
    }

    @Test("a due will is published only if the record still shows the disconnection it was scheduled for")
    func willDue() {
        var will = Self.will
        will.delayIntervalSeconds = 30
        let scheduledAt: Int64 = 1_000
        let waiting = Self.disconnected("a", on: "gw0:1883", at: scheduledAt, will: will)
        #expect(GatewayLivenessTracker.willDue(record: waiting, scheduled: will, disconnectedAtMillis: scheduledAt, sessionExpiryIntervalSeconds: 3_600) == will)
        // [MQTT-3.1.3-9]: the client connected again (anywhere) — or connected and left again.
        var reconnected = waiting
        reconnected.disconnectedAtMillis = nil
        reconnected.gatewayNode = "gw1:1883"
        #expect(GatewayLivenessTracker.willDue(record: reconnected, scheduled: will, disconnectedAtMillis: scheduledAt, sessionExpiryIntervalSeconds: 3_600) == nil)
        var leftAgain = reconnected
        leftAgain.disconnectedAtMillis = 7_000
        #expect(GatewayLivenessTracker.willDue(record: leftAgain, scheduled: will, disconnectedAtMillis: scheduledAt, sessionExpiryIntervalSeconds: 3_600) == nil)
        // Already published.
        var published = waiting
        published.will = nil
        #expect(GatewayLivenessTracker.willDue(record: published, scheduled: will, disconnectedAtMillis: scheduledAt, sessionExpiryIntervalSeconds: 3_600) == nil)
        // The session is gone: it expired when the will was due (delay capped by the expiry) — publish; or
        // it was ended earlier by someone else — do not.
        #expect(GatewayLivenessTracker.willDue(record: nil, scheduled: will, disconnectedAtMillis: scheduledAt, sessionExpiryIntervalSeconds: 20) == will)
        #expect(GatewayLivenessTracker.willDue(record: nil, scheduled: will, disconnectedAtMillis: scheduledAt, sessionExpiryIntervalSeconds: 3_600) == nil)
    }
}

@Suite("broker.conf: the gateway liveness keys")
struct GatewayLivenessConfigurationTests {
    @Test("gatewayCheckIntervalSeconds and gatewayMissingSeconds are read, with defaults 3 and 15, and checked")
    func keys() throws {
        let base = "storePathRootDir=/tmp/store\n"
        let defaults = try BrokerConfiguration.parse(base).configuration
        #expect(defaults.gatewayCheckIntervalSeconds == 3)
        #expect(defaults.gatewayMissingSeconds == 15)
        let (set, warnings) = try BrokerConfiguration.parse(base + "gatewayCheckIntervalSeconds=1\ngatewayMissingSeconds=7\n")
        #expect(warnings == [])
        #expect(set.gatewayCheckIntervalSeconds == 1)
        #expect(set.gatewayMissingSeconds == 7)
        #expect(throws: BrokerConfiguration.LoadError.self) { try BrokerConfiguration.parse(base + "gatewayCheckIntervalSeconds=0\n") }
        #expect(throws: BrokerConfiguration.LoadError.self) { try BrokerConfiguration.parse(base + "gatewayMissingSeconds=-1\n") }
    }
}
