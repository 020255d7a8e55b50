import Foundation
import LMQStore
import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NameServer
import Remoting

/// Publishes the wills of a dead gateway's clients and releases their sessions (DESIGN.md, "Wills": "or by
/// the cluster if the gateway holding the connection dies").
///
/// Every check interval it lists the live gateways (the union over the name servers that answer; when
/// none answers, the check is skipped) and reads the session records; ``GatewayLivenessTracker`` decides
/// which gateways are dead and which sessions they left. For each such session it does what a gateway
/// does when a client's connection drops without DISCONNECT ([MQTT-3.1.2-8]): the session is marked
/// disconnected, its will is published (after its Will Delay Interval, [MQTT-3.1.3-9]), and a session
/// with expiry 0 ends. Each record is read again right before acting on it, so a client that connected
/// again meanwhile (anywhere) is left alone.
///
/// Runs on the store node, which holds the session records and the log, when it has name servers.
final class GatewayLivenessMonitor: Sendable {
    private let nameServers: [any NameServerClient]
    private let store: LMQStore
    private let metadata: LMQMetadataStore
    private let dispatch: DispatchRegistry
    private let checkInterval: Duration
    /// Which connections hold client identifiers: a session held by a live connection is not released.
    private let ownership: SessionOwnership
    private let settings: GatewayLivenessTracker.Settings
    private let logger: Logger
    private let loop = NIOLockedValueBox<Task<Void, Never>?>(nil)
    /// Wills waiting for their delay, by client identifier, each with the token of its schedule.
    private let delayedWills = NIOLockedValueBox<[String: (token: UInt64, task: Task<Void, Never>)]>([:])
    private let lastToken = NIOLockedValueBox<UInt64>(0)

    /// This node's address as registered (`host:port`): a will whose first topic is routed elsewhere is
    /// appended on the node its route names.
    private let ownAddress: String
    /// Clients of the other store nodes wills were appended on, by address.
    private let otherNodes = NIOLockedValueBox<[String: StoreNodeClient]>([:])

    init(
        nameServers: [any NameServerClient], store: LMQStore, metadata: LMQMetadataStore, dispatch: DispatchRegistry,
        ownership: SessionOwnership, ownAddress: String, checkInterval: Duration, settings: GatewayLivenessTracker.Settings,
        logger: Logger
    ) {
        precondition(checkInterval > .zero, "the check interval must be positive")
        self.ownership = ownership
        self.ownAddress = ownAddress
        self.nameServers = nameServers
        self.store = store
        self.metadata = metadata
        self.dispatch = dispatch
        self.checkInterval = checkInterval
        self.settings = settings
        self.logger = logger
    }

    /// Starts checking, every check interval.
    func start() {
        let task = Task { [self] in
            var tracker = GatewayLivenessTracker(settings: settings)
            var nameServersAnswered = true
            while !Task.isCancelled {
                try? await Task.sleep(for: checkInterval)
                guard !Task.isCancelled else { return }
                guard let live = await liveGateways() else {
                    // Said once per outage: a silent registry proves nothing about the gateways.
                    if nameServersAnswered { logger.warning("no name server answers; dead gateways are not looked for until one does") }
                    nameServersAnswered = false
                    continue
                }
                if !nameServersAnswered { logger.info("a name server answers again; looking for dead gateways") }
                nameServersAnswered = true
                await check(live: live, &tracker)
            }
        }
        loop.withLockedValue { $0 = task }
    }

    /// Stops checking and forgets the wills waiting for their delay (they stay in the session records);
    /// returns once the check under way, if any, has finished.
    func stop() async {
        let task = loop.withLockedValue { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await task?.value
        let waiting = delayedWills.withLockedValue { wills in
            defer { wills = [:] }
            return wills.values.map(\.task)
        }
        for will in waiting {
            will.cancel()
            await will.value
        }
        let others = otherNodes.withLockedValue { nodes in
            defer { nodes = [:] }
            return Array(nodes.values)
        }
        for node in others { try? await node.close() }
    }

    /// The store node `firstTopic` is routed to when it is another than this one (several store nodes).
    private func otherNode(for firstTopic: String) async -> StoreNodeClient? {
        var route: TopicRoute?
        for nameServer in nameServers {
            do {
                route = try await nameServer.topicRoute(firstTopic)
                break
            } catch .topicNotFound {
                return nil
            } catch {
                continue
            }
        }
        guard let address = route?.storeAddresses.sorted().first, address != ownAddress, let parsed = RemotingAddress(parsing: address) else {
            return nil
        }
        return otherNodes.withLockedValue { nodes in
            if let node = nodes[address] { return node }
            let node = StoreNodeClient(address: parsed, logger: logger)
            nodes[address] = node
            return node
        }
    }

    /// The union of the gateways the name servers list; nil when none answers.
    private func liveGateways() async -> Set<String>? {
        var live: Set<String> = []
        var answered = false
        for nameServer in nameServers {
            do {
                // A gateway names its sessions `address#name` (the name is per start, so a gateway restarted on
                // the same address does not keep the sessions of the run that died).
                for status in try await nameServer.listNodes(kind: .gateway) {
                    live.insert(status.node.address)
                    if !status.node.name.isEmpty { live.insert("\(status.node.address)#\(status.node.name)") }
                }
                answered = true
            } catch {
                logger.debug("listing the gateways failed", metadata: ["error": "\(error)"])
            }
        }
        return answered ? live : nil
    }

    /// One check with the live gateways known: which sessions are orphaned, and acting on them.
    private func check(live: Set<String>, _ tracker: inout GatewayLivenessTracker) async {
        guard !tracker.checkWithoutSessions(liveGateways: live) else { return }
        let sessions: [SessionRecord]
        do {
            sessions = try await metadata.allSessions()
        } catch {
            logger.warning("reading the sessions for the gateway liveness check failed", metadata: ["error": "\(error)"])
            return
        }
        let orphans = tracker.checked(liveGateways: live, sessions: sessions, now: .now)
        for orphan in orphans {
            guard !Task.isCancelled else { return }
            switch orphan {
            case .connectionLost(let clientIdentifier, let gateway):
                // Held against claims meanwhile: a client connecting again right now waits until its session
                // is released, rather than have its new connection recorded and then overwritten.
                var disconnectedAt: Int64?
                let released = await ownership.whileUnclaimed(clientIdentifier) {
                    disconnectedAt = await connectionLost(clientIdentifier: clientIdentifier, gateway: gateway)
                }
                if !released {
                    logger.info("client connected again before its dead gateway's session was released", metadata: [
                        "client": "\(clientIdentifier)", "deadGateway": "\(gateway)",
                    ])
                }
                if let disconnectedAt {
                    tracker.willScheduled(clientIdentifier: clientIdentifier, disconnectedAtMillis: disconnectedAt)
                }
            case .willWaiting(let clientIdentifier, let gateway, let disconnectedAt):
                await adoptWill(clientIdentifier: clientIdentifier, gateway: gateway, disconnectedAtMillis: disconnectedAt)
            }
        }
    }

    /// Does for the session of `clientIdentifier` what `gateway` would have done had it seen the connection
    /// drop. Returns the disconnection time when a will now waits for its delay.
    private func connectionLost(clientIdentifier: String, gateway: String) async -> Int64? {
        do {
            // Read again: the client may have connected (to another gateway) since the sessions were listed.
            guard let record = try await metadata.session(clientIdentifier: clientIdentifier),
                record.disconnectedAtMillis == nil, record.gatewayNode == gateway
            else {
                logger.info("client connected again before its dead gateway's session was released", metadata: [
                    "client": "\(clientIdentifier)", "deadGateway": "\(gateway)",
                ])
                return nil
            }
            let now = Date.nowMillis
            guard record.sessionExpiryIntervalSeconds > 0 else {
                // The session ends with its connection, and the will with it, whatever its delay (§3.1.3.2.2).
                logger.info("the gateway of a connected client is dead: publishing its will and ending its session", metadata: [
                    "client": "\(clientIdentifier)", "deadGateway": "\(gateway)", "will": "\(record.will != nil)",
                ])
                if let will = record.will { await publish(will, clientIdentifier: clientIdentifier, clearFromRecord: false) }
                endSession(record)
                _ = try await metadata.deleteSessionAndOffsets(clientIdentifier: clientIdentifier)
                return nil
            }
            try await metadata.markDisconnected(clientIdentifier: clientIdentifier, atMillis: now, sessionExpiryIntervalSeconds: nil)
            logger.info("the gateway of a connected client is dead: its session is disconnected", metadata: [
                "client": "\(clientIdentifier)", "deadGateway": "\(gateway)", "will": "\(record.will != nil)",
            ])
            guard let will = record.will else { return nil }
            schedule(will, clientIdentifier: clientIdentifier, sessionExpiryIntervalSeconds: record.sessionExpiryIntervalSeconds, disconnectedAtMillis: now)
            return now
        } catch {
            logger.error("releasing the session of a dead gateway's client failed; retrying on the next check", metadata: [
                "client": "\(clientIdentifier)", "deadGateway": "\(gateway)", "error": "\(error)",
            ])
            return nil
        }
    }

    /// The will of a client whose connection had closed on `gateway` before it died: published when it
    /// was due there.
    private func adoptWill(clientIdentifier: String, gateway: String, disconnectedAtMillis: Int64) async {
        do {
            guard let record = try await metadata.session(clientIdentifier: clientIdentifier),
                record.disconnectedAtMillis == disconnectedAtMillis, let will = record.will
            else { return }
            logger.info("the gateway that held a waiting will is dead: the will is published when due", metadata: [
                "client": "\(clientIdentifier)", "deadGateway": "\(gateway)",
            ])
            schedule(will, clientIdentifier: clientIdentifier, sessionExpiryIntervalSeconds: record.sessionExpiryIntervalSeconds, disconnectedAtMillis: disconnectedAtMillis)
        } catch {
            logger.error("reading the session of a dead gateway's client failed", metadata: [
                "client": "\(clientIdentifier)", "deadGateway": "\(gateway)", "error": "\(error)",
            ])
        }
    }

    /// Publishes `will` once its delay, counted from `disconnectedAtMillis`, has passed, if the session still
    /// shows that disconnection then (``GatewayLivenessTracker/willDue(record:scheduled:disconnectedAtMillis:sessionExpiryIntervalSeconds:)``).
    private func schedule(_ will: StoredWill, clientIdentifier: String, sessionExpiryIntervalSeconds: UInt32, disconnectedAtMillis: Int64) {
        let delaySeconds = GatewayLivenessTracker.willDelaySeconds(will, sessionExpiryIntervalSeconds: sessionExpiryIntervalSeconds)
        let delayMillis = disconnectedAtMillis + Int64(delaySeconds) * 1_000 - Date.nowMillis
        let token = lastToken.withLockedValue { token -> UInt64 in
            token += 1
            return token
        }
        let run: @Sendable () async -> Void = { [self] in
            defer {
                delayedWills.withLockedValue { wills in
                    if wills[clientIdentifier]?.token == token { wills[clientIdentifier] = nil }
                }
            }
            if delayMillis > 0 {
                do {
                    try await Task.sleep(for: .milliseconds(delayMillis))
                } catch {
                    return  // The node is stopping; the will stays in the record.
                }
            }
            do {
                let record = try await metadata.session(clientIdentifier: clientIdentifier)
                guard let due = GatewayLivenessTracker.willDue(
                    record: record, scheduled: will, disconnectedAtMillis: disconnectedAtMillis,
                    sessionExpiryIntervalSeconds: sessionExpiryIntervalSeconds
                ) else {
                    logger.info("a dead gateway's client connected again: its will is not published", metadata: ["client": "\(clientIdentifier)"])
                    return
                }
                await publish(due, clientIdentifier: clientIdentifier, clearFromRecord: record != nil)
            } catch {
                logger.error("reading the session of a waiting will failed; the will is not published", metadata: [
                    "client": "\(clientIdentifier)", "error": "\(error)",
                ])
            }
        }
        // Started under the lock, so that a will due at once cannot finish (and forget itself) before it
        // is remembered.
        let replaced = delayedWills.withLockedValue { wills in
            defer { wills[clientIdentifier] = (token, Task { await run() }) }
            return wills[clientIdentifier]
        }
        replaced?.task.cancel()
    }

    /// Appends the will like any message of its topic (its queue, and that of every matching wildcard
    /// filter of the cluster, as APPEND does), keeps or deletes it as retained with RETAIN
    /// ([MQTT-3.3.1-5], [MQTT-3.3.1-6]), and removes it from the session record ([MQTT-3.1.2-10]).
    private func publish(_ will: StoredWill, clientIdentifier: String, clearFromRecord: Bool) async {
        // The Will Delay Interval is the server's; it does not go to subscribers.
        let properties = MQTTProperties(will.properties.filter { $0.identifier != .willDelayInterval })
        let message = LMQMessage(
            topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: properties,
            originClientIdentifier: clientIdentifier
        )
        do {
            let topic = try TopicName(will.topic)
            let result: AppendResult
            if let recipient = LMQNaming.p2pRecipientClientId(of: topic) {
                // A peer-to-peer topic goes to its recipient's queue alone (DESIGN.md, "Peer-to-peer").
                result = try await store.append(message, to: [LMQNaming.p2pLMQName(clientId: String(recipient))])
            } else if let home = await otherNode(for: String(topic.firstTopic)) {
                // Several store nodes: the node of the first topic takes its topic queue and the filters
                // registered there; this one keeps the filters whose first level is a wildcard.
                result = try await home.append(message, to: [topic.lmqName])
                let spanning = dispatch.dispatchQueues(topic: will.topic, adding: []).filter { queue in
                    let level = queue.dropFirst(LMQNaming.prefix.count).prefix { $0 != "%" }
                    return level == "+" || level == "#"
                }
                if !spanning.isEmpty { _ = try await store.append(message, to: spanning) }
            } else {
                result = try await store.append(message, to: dispatch.dispatchQueues(topic: will.topic, adding: [topic.lmqName]))
            }
            if will.retain {
                try await metadata.setRetained(RetainedMessage(
                    topic: will.topic, payload: will.payload, qos: will.qos, properties: properties,
                    storeTimestampMillis: result.storeTimestampMillis
                ))
            }
            logger.info("published the will of a dead gateway's client", metadata: ["client": "\(clientIdentifier)", "topic": "\(will.topic)"])
        } catch {
            logger.error("publishing the will of a dead gateway's client failed", metadata: ["client": "\(clientIdentifier)", "error": "\(error)"])
        }
        guard clearFromRecord else { return }
        do {
            try await metadata.setWill(clientIdentifier: clientIdentifier, nil)
        } catch LMQMetadataStoreError.sessionNotFound {
            // The session ended meanwhile, and its will with it.
        } catch {
            logger.error("removing the published will failed", metadata: ["client": "\(clientIdentifier)", "error": "\(error)"])
        }
    }

    /// A session that ends: its wildcard filters stop being dispatch targets.
    private func endSession(_ record: SessionRecord) {
        let registrations = record.subscriptions.map {
            DispatchRegistration(filter: $0.topicFilter, clientIdentifier: record.clientIdentifier)
        }
        dispatch.update(added: [], removed: registrations)
    }
}
