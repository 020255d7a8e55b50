import LMQStore
import Logging
import MQTTCore
import NIOConcurrencyHelpers

/// The node's work on sessions that no connection holds: after a restart, the sessions whose connections
/// died with the node; every second, the sessions whose expiry interval ran out ([MQTT-3.1.2-23],
/// §4.1). Also counts background writes (wills, ended sessions), so a graceful stop can wait for them.
final class SessionMaintenance: Sendable {
    private let sweeper = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let pendingWork = NIOLockedValueBox<Int>(0)

    /// How often expired sessions are looked for.
    static let sweepInterval: Duration = .seconds(1)
    /// The most sessions ended per sweep.
    static let sweepBatch = 1_000

    /// Runs `body` in a task of its own, counted as pending work from now until it returns (so a graceful
    /// stop that finds no pending work knows no such task is about to start).
    func spawn(_ body: @escaping @Sendable () async -> Void) {
        pendingWork.withLockedValue { $0 += 1 }
        Task { [pendingWork] in
            await body()
            pendingWork.withLockedValue { $0 -= 1 }
        }
    }

    /// Background writes still running.
    var pendingWorkCount: Int { pendingWork.withLockedValue { $0 } }

    /// Starts the expiry sweeper.
    func start(services: GatewayServices) {
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.sweepInterval)
                guard !Task.isCancelled else { return }
                await Self.endExpiredSessions(services: services)
            }
        }
        sweeper.withLockedValue { $0 = task }
    }

    func stop() {
        sweeper.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    private static func endExpiredSessions(services: GatewayServices) async {
        do {
            let expired = try await services.metadata.expiredSessions(nowMillis: GatewayServices.wallClockMillis, limit: sweepBatch)
            for clientIdentifier in expired where !services.sessions.isAttached(clientIdentifier) {
                guard let record = try await services.metadata.session(clientIdentifier: clientIdentifier) else { continue }
                try await services.endSession(record)
                services.logger.info("session of \(clientIdentifier) expired")
            }
        } catch {
            services.logger.error("ending expired sessions failed: \(error)")
        }
    }

    /// After a start: every stored session's wildcard filters become dispatch targets again (messages for an
    /// offline session keep reaching its queues); a session whose connection was open when the node stopped
    /// is disconnected now, as if its network connection had failed — its will is published (after its delay)
    /// and one with expiry 0 ends; a will still waiting for its delay is scheduled again.
    static func recoverSessions(services: GatewayServices) async throws {
        let records = try await services.metadata.allSessions()
        if services.isClustered {
            // The sessions belong to the cluster: those connected are on other gateways. Only the dispatch
            // targets are this gateway's business, told to the store nodes (of each filter's first topic) in a
            // few requests.
            let pairs = records.flatMap { record in
                record.subscriptions.compactMap { subscription in
                    (try? TopicFilter(subscription.topicFilter)).flatMap { $0.isShared ? nil : ($0, record.clientIdentifier) }
                }
            }
            try await services.store.prepareRoutes(services.store.unroutedTopics(pairs.map(\.0.filter)))
            services.router.addDispatch(pairs)
            return
        }
        let now = GatewayServices.wallClockMillis
        var interrupted = 0
        for record in records {
            let clientIdentifier = record.clientIdentifier
            guard let disconnectedAt = record.disconnectedAtMillis else {
                interrupted += 1
                if record.sessionExpiryIntervalSeconds == 0 {
                    try await services.endSession(record)
                    if let will = record.will {
                        await services.publishWill(will, clientIdentifier: clientIdentifier, sessionStored: false)
                    }
                    continue
                }
                try await services.metadata.markDisconnected(clientIdentifier: clientIdentifier, atMillis: now, sessionExpiryIntervalSeconds: nil)
                addDispatch(record, services: services)
                if let will = record.will {
                    services.publishWill(
                        will, clientIdentifier: clientIdentifier, sessionStored: true,
                        sessionExpiryIntervalSeconds: record.sessionExpiryIntervalSeconds, disconnectedAtMillis: now
                    )
                }
                continue
            }
            addDispatch(record, services: services)
            if let will = record.will {
                services.publishWill(
                    will, clientIdentifier: clientIdentifier, sessionStored: true,
                    sessionExpiryIntervalSeconds: record.sessionExpiryIntervalSeconds, disconnectedAtMillis: disconnectedAt
                )
            }
        }
        if !records.isEmpty {
            services.logger.info("sessions recovered", metadata: [
                "stored": "\(records.count)", "connectedWhenTheNodeStopped": "\(interrupted)",
            ])
        }
    }

    private static func addDispatch(_ record: SessionRecord, services: GatewayServices) {
        for subscription in record.subscriptions {
            if let filter = try? TopicFilter(subscription.topicFilter), !filter.isShared {
                services.router.addDispatch(filter, clientIdentifier: record.clientIdentifier)
            }
        }
    }
}
