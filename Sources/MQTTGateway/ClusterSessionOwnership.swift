import Logging
import NIOConcurrencyHelpers
import NIOCore
import StoreNode

/// The gateway's side of cluster-wide takeover ([MQTT-3.1.4-3]): a client that connects to this gateway
/// while its identifier is connected on another is taken over from there (SessionOwnership on the store
/// node; docs/cluster.md).
///
/// - Before a session is read, its client identifier is *claimed*; the store node answers once no other
///   gateway holds it (that gateway closed the connection and wrote the session).
/// - When the store node says another gateway claims an identifier held here, the connection is taken
///   over as within one gateway, and the store node is told once the session is written.
/// - When a connection ends, its claim is released after the session is written.
final class ClusterSessionOwnership: Sendable {
    private struct Claim {
        var connectionID: UInt64
        var token: UInt64
    }

    private let client: StoreNodeClient
    private let sessions: SessionRegistry
    private let logger: Logger
    private let claims = NIOLockedValueBox<[String: Claim]>([:])

    init(client: StoreNodeClient, sessions: SessionRegistry, logger: Logger) {
        self.client = client
        self.sessions = sessions
        self.logger = logger
        client.setTakeoverHandler { [weak self] clientIdentifier, claimID in
            self?.giveUp(clientIdentifier, claimID: claimID)
        }
    }

    /// Returns once this gateway holds `clientIdentifier` for `connectionID` cluster-wide.
    func claim(_ clientIdentifier: String, connectionID: UInt64) async throws {
        let token = try await client.claimSession(clientIdentifier)
        claims.withLockedValue { $0[clientIdentifier] = Claim(connectionID: connectionID, token: token) }
    }

    /// The connection `connectionID` of `clientIdentifier` ended; its claim is released once `settling`
    /// (the write of its session) is done.
    func release(_ clientIdentifier: String, connectionID: UInt64, after settling: EventLoopFuture<Void>?) {
        let claim = claims.withLockedValue { claims -> Claim? in
            guard let claim = claims[clientIdentifier], claim.connectionID == connectionID else { return nil }
            claims[clientIdentifier] = nil
            return claim
        }
        guard let claim else { return }
        guard let settling else {
            client.releaseSession(clientIdentifier, token: claim.token)
            return
        }
        settling.whenComplete { [client] _ in client.releaseSession(clientIdentifier, token: claim.token) }
    }

    /// Another gateway claims `clientIdentifier`: close its connection here, write the session, then say so.
    private func giveUp(_ clientIdentifier: String, claimID: UInt64) {
        claims.withLockedValue { _ = $0.removeValue(forKey: clientIdentifier) }
        let (owner, settling) = sessions.holder(of: clientIdentifier)
        let client = self.client
        if let owner {
            logger.info("client \(clientIdentifier) connected to another gateway: taking its session over from here")
            let settled = owner.eventLoop.makePromise(of: Void.self)
            owner.sessionTakenOver(settled: settled)
            settled.futureResult.whenComplete { [sessions] _ in
                // The taken-over connection leaves the registry itself only for a successor on this gateway.
                sessions.detach(clientIdentifier, connectionID: owner.connectionID, settling: nil)
                client.takeoverDone(clientIdentifier, claimID: claimID)
            }
        } else if let settling {
            settling.whenComplete { _ in client.takeoverDone(clientIdentifier, claimID: claimID) }
        } else {
            client.takeoverDone(clientIdentifier, claimID: claimID)
        }
    }
}
