import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Remoting

/// Which gateway holds each client identifier's connection, so that a client connecting to gateway B
/// takes its session over from gateway A ([MQTT-3.1.4-3], cluster-wide).
///
/// A gateway *claims* a client identifier before it reads the session. If another gateway connection
/// holds it, the store node pushes that gateway a TAKEOVER (client identifier, claim id) and answers the
/// claim once the holder says it is done (TAKEOVER_DONE: its connection is closed and the session state
/// written), once the holder's connection to the store node closes, or after ``takeoverTimeout`` (a
/// holder that cannot answer is treated as gone). A gateway *releases* its claim when the client's
/// connection ends; the token of the claim makes a late release of an older connection harmless.
///
/// Ownership is kept in memory: after a store node restart, the next connection of a client simply
/// claims it (and a gateway that still holds an older connection of that client keeps it until it ends
/// — the one case where two connections of a client can be open at once).
public final class SessionOwnership: Sendable {
    /// How long a claim waits for the holder to give the session up.
    public static let takeoverTimeout: TimeAmount = .seconds(10)

    private struct Owner {
        var connection: RemotingServerConnection
        var token: UInt64
    }

    private struct Takeover {
        var claimID: UInt64
        var holder: ObjectIdentifier
        var done: EventLoopPromise<Void>
        var timeout: Scheduled<Void>?
    }

    private struct State {
        var owners: [String: Owner] = [:]
        var takeovers: [String: Takeover] = [:]
        /// Connections whose close is watched (to forget what they held).
        var watchedConnections: Set<ObjectIdentifier> = []
        var lastID: UInt64 = 0

        mutating func nextID() -> UInt64 {
            lastID += 1
            return lastID
        }
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Claims `clientIdentifier` for `connection`; the future gives the claim's token once no other
    /// connection holds it. `push` sends the TAKEOVER request to the holder.
    public func claim(
        _ clientIdentifier: String, by connection: RemotingServerConnection,
        push: @escaping @Sendable (RemotingServerConnection, _ clientIdentifier: String, _ claimID: UInt64) -> Void
    ) -> EventLoopFuture<UInt64> {
        enum Step {
            case granted(UInt64)
            case waitFor(EventLoopFuture<Void>)
            case takeOver(from: RemotingServerConnection, claimID: UInt64, done: EventLoopFuture<Void>)
        }
        let eventLoop = connection.eventLoop
        let (step, watchClose) = state.withLockedValue { state -> (Step, Bool) in
            let watchClose = state.watchedConnections.insert(connection.id).inserted
            if let running = state.takeovers[clientIdentifier] {
                return (.waitFor(running.done.futureResult), watchClose)
            }
            guard let owner = state.owners[clientIdentifier], owner.connection != connection, owner.connection.isActive else {
                let token = state.nextID()
                state.owners[clientIdentifier] = Owner(connection: connection, token: token)
                return (.granted(token), watchClose)
            }
            let claimID = state.nextID()
            let done = eventLoop.makePromise(of: Void.self)
            state.takeovers[clientIdentifier] = Takeover(claimID: claimID, holder: owner.connection.id, done: done, timeout: nil)
            return (.takeOver(from: owner.connection, claimID: claimID, done: done.futureResult), watchClose)
        }
        if watchClose {
            connection.closeFuture.whenComplete { [weak self] _ in self?.connectionClosed(connection.id) }
        }
        switch step {
        case .granted(let token):
            return eventLoop.makeSucceededFuture(token)
        case .waitFor(let running):
            return running.hop(to: eventLoop).flatMap { self.claim(clientIdentifier, by: connection, push: push) }
        case .takeOver(let holder, let claimID, let done):
            let timeout = eventLoop.scheduleTask(in: Self.takeoverTimeout) { [weak self] () -> Void in
                self?.takeoverDone(clientIdentifier, claimID: claimID)
            }
            state.withLockedValue { state in
                guard state.takeovers[clientIdentifier]?.claimID == claimID else { return }
                state.takeovers[clientIdentifier]?.timeout = timeout
            }
            push(holder, clientIdentifier, claimID)
            return done.hop(to: eventLoop).flatMap { self.claim(clientIdentifier, by: connection, push: push) }
        }
    }

    /// The holder gave `clientIdentifier` up (or is treated as gone): the waiting claim goes on.
    public func takeoverDone(_ clientIdentifier: String, claimID: UInt64) {
        let finished = state.withLockedValue { state -> Takeover? in
            guard let takeover = state.takeovers[clientIdentifier], takeover.claimID == claimID else { return nil }
            state.takeovers[clientIdentifier] = nil
            if state.owners[clientIdentifier]?.connection.id == takeover.holder { state.owners[clientIdentifier] = nil }
            return takeover
        }
        finished?.timeout?.cancel()
        finished?.done.succeed()
    }

    /// The client's connection on the claiming gateway ended: forgets the claim if it is still `token`'s.
    public func release(_ clientIdentifier: String, token: UInt64) {
        state.withLockedValue { state in
            if state.owners[clientIdentifier]?.token == token { state.owners[clientIdentifier] = nil }
        }
    }

    /// A gateway's connection closed: what it held is free, and takeovers waiting for it go on.
    private func connectionClosed(_ connection: ObjectIdentifier) {
        let finished = state.withLockedValue { state -> [Takeover] in
            state.watchedConnections.remove(connection)
            state.owners = state.owners.filter { $0.value.connection.id != connection }
            let finished = state.takeovers.filter { $0.value.holder == connection }
            for key in finished.keys { state.takeovers[key] = nil }
            return Array(finished.values)
        }
        for takeover in finished {
            takeover.timeout?.cancel()
            takeover.done.succeed()
        }
    }

    /// Runs `body` with `clientIdentifier` held against claims (a claim made meanwhile waits for it), unless a
    /// connection holds it or a takeover of it runs: then returns false without running `body`. For the
    /// store node's own changes to a session that no gateway holds (a dead gateway's client).
    public func whileUnclaimed(_ clientIdentifier: String, _ body: () async -> Void) async -> Bool {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let claimID = state.withLockedValue { state -> UInt64? in
            if let owner = state.owners[clientIdentifier], owner.connection.isActive { return nil }
            guard state.takeovers[clientIdentifier] == nil else { return nil }
            let claimID = state.nextID()
            state.takeovers[clientIdentifier] = Takeover(
                claimID: claimID, holder: ObjectIdentifier(self), done: eventLoop.makePromise(of: Void.self), timeout: nil
            )
            return claimID
        }
        guard let claimID else { return false }
        await body()
        takeoverDone(clientIdentifier, claimID: claimID)
        return true
    }

    /// How many client identifiers are held (for tests and stats).
    public var count: Int { state.withLockedValue { $0.owners.count } }
}
