import LMQStore
import Logging
import MQTTAuth
import NIOConcurrencyHelpers

/// The parts of a node that every connection shares: the store, the authenticator and the registries.
final class GatewayServices: Sendable {
    let configuration: GatewayConfiguration
    let store: LMQStore
    /// Retained messages (and, later, sessions and offsets) in SQLite.
    let metadata: LMQMetadataStore
    let authManager: any AuthManager
    let sessions = SessionRegistry()
    let router = SubscriptionRouter()
    let logger: Logger
    private let liveConnections = NIOLockedValueBox<[UInt64: ConnectionHandle]>([:])
    private let lastConnectionID = NIOLockedValueBox<UInt64>(0)

    init(configuration: GatewayConfiguration, store: LMQStore, metadata: LMQMetadataStore, authManager: any AuthManager, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.metadata = metadata
        self.authManager = authManager
        self.logger = logger
    }

    /// A new connection identifier: unique in this process, and part of assigned client identifiers.
    func makeConnectionID() -> UInt64 {
        lastConnectionID.withLockedValue { last in
            last += 1
            return last
        }
    }

    func connectionOpened(_ handle: ConnectionHandle) {
        liveConnections.withLockedValue { $0[handle.connectionID] = handle }
    }

    func connectionClosed(_ connectionID: UInt64) {
        liveConnections.withLockedValue { $0[connectionID] = nil }
    }

    /// Open network connections, connected or not.
    var openConnections: [ConnectionHandle] {
        liveConnections.withLockedValue { Array($0.values) }
    }
}
