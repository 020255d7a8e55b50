import NIOConcurrencyHelpers

/// Which connection holds the session of each client identifier, so that a second CONNECT with the same
/// identifier takes the session over ([MQTT-3.1.4-3]). Shared by every event loop, hence the lock.
final class SessionRegistry: Sendable {
    private let owners = NIOLockedValueBox<[String: ConnectionHandle]>([:])

    /// Makes `handle` the owner of `clientIdentifier`'s session and returns the previous owner, which the
    /// caller must tell `sessionTakenOver`.
    func attach(_ clientIdentifier: String, _ handle: ConnectionHandle) -> ConnectionHandle? {
        owners.withLockedValue { owners in
            let previous = owners[clientIdentifier]
            owners[clientIdentifier] = handle
            return previous.flatMap { $0.connectionID == handle.connectionID ? nil : $0 }
        }
    }

    /// Forgets the owner of `clientIdentifier` if it still is `connectionID` (a taken-over connection
    /// detaching late must not remove its successor).
    func detach(_ clientIdentifier: String, connectionID: UInt64) {
        owners.withLockedValue { owners in
            if owners[clientIdentifier]?.connectionID == connectionID {
                owners[clientIdentifier] = nil
            }
        }
    }

    /// Every connection holding a session.
    var allConnections: [ConnectionHandle] {
        owners.withLockedValue { Array($0.values) }
    }

    /// The number of sessions held by connections.
    var count: Int { owners.withLockedValue { $0.count } }
}
