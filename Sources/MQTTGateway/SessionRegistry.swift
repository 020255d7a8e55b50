import NIOConcurrencyHelpers
import NIOCore

/// Which connection holds the session of each client identifier, so that a second CONNECT with the same
/// identifier takes the session over ([MQTT-3.1.4-3]), and which sessions are still being written by a
/// connection that closed, so that the next connection reads them only once that is done. Shared by every
/// event loop, hence the lock.
final class SessionRegistry: Sendable {
    private struct State {
        var owners: [String: ConnectionHandle] = [:]
        /// Client identifier → the write of a closed connection's session state, while it runs.
        var settling: [String: EventLoopFuture<Void>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Makes `handle` the owner of `clientIdentifier`'s session. Returns the previous owner, which the caller
    /// must tell `sessionTakenOver`, and the session write still running for the identifier, if any; the new
    /// connection reads the session once both are done.
    func attach(_ clientIdentifier: String, _ handle: ConnectionHandle) -> (previous: ConnectionHandle?, settling: EventLoopFuture<Void>?) {
        state.withLockedValue { state in
            let previous = state.owners[clientIdentifier]
            state.owners[clientIdentifier] = handle
            return (previous.flatMap { $0.connectionID == handle.connectionID ? nil : $0 }, state.settling[clientIdentifier])
        }
    }

    /// Forgets the owner of `clientIdentifier` if it still is `connectionID` (a taken-over connection
    /// detaching late must not remove its successor), and records `settling`, the write of its session
    /// state, which a later `attach` waits for.
    func detach(_ clientIdentifier: String, connectionID: UInt64, settling: EventLoopFuture<Void>?) {
        state.withLockedValue { state in
            if state.owners[clientIdentifier]?.connectionID == connectionID {
                state.owners[clientIdentifier] = nil
            }
            if let settling { state.settling[clientIdentifier] = settling }
        }
        settling?.whenComplete { [state] _ in
            state.withLockedValue { state in
                if let current = state.settling[clientIdentifier], current === settling {
                    state.settling[clientIdentifier] = nil
                }
            }
        }
    }

    /// The connection holding the session of `clientIdentifier`, and the session write of a closed one
    /// still running, if any.
    func holder(of clientIdentifier: String) -> (owner: ConnectionHandle?, settling: EventLoopFuture<Void>?) {
        state.withLockedValue { ($0.owners[clientIdentifier], $0.settling[clientIdentifier]) }
    }

    /// Whether a connection on this node holds the session.
    func isAttached(_ clientIdentifier: String) -> Bool {
        state.withLockedValue { $0.owners[clientIdentifier] != nil }
    }

    /// Every connection holding a session.
    var allConnections: [ConnectionHandle] {
        state.withLockedValue { Array($0.owners.values) }
    }

    /// Session writes of closed connections still running.
    var settlingCount: Int { state.withLockedValue { $0.settling.count } }

    /// The number of sessions held by connections.
    var count: Int { state.withLockedValue { $0.owners.count } }
}
