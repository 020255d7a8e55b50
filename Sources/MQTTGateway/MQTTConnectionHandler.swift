import Foundation
import LMQStore
import Logging
import MQTTAuth
import MQTTCore
import NIOCore
import StoreNode

/// Runs one MQTT connection: feeds what happens (packets, decode errors, timers, answers of the store
/// and the authenticator) to its `ServerConnectionStateMachine` and executes the actions it returns.
/// All state lives on the channel's event loop; other threads reach it through `ConnectionHandle`.
///
/// The session parts (attach, resume, detach, the journal of a persistent session) are in
/// `MQTTConnectionHandler+Session.swift`, delivery to the client in `MQTTConnectionHandler+Delivery.swift`.
final class MQTTConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = MQTTPacket
    typealias OutboundOut = MQTTPacket

    /// One delivery offered to the machine.
    struct DeliveryRecord {
        /// The `SubscriptionReader.key` it came from.
        var key: String
        /// Its offset in the reader's queue; nil for a retained message.
        var offset: Int64?
        var qos: MQTTQoS
    }

    let services: GatewayServices
    let connectionID: UInt64
    let encoderHandler: MQTTPacketEncoderHandler
    var machine: ServerConnectionStateMachine
    var logger: Logger
    var context: ChannelHandlerContext?
    var handle: ConnectionHandle?
    var eventLoop: (any EventLoop)?
    private var timer: Scheduled<Void>?
    /// Retained-message and QoS 2 identifier writes of this connection, one after another.
    private var metadataChain: EventLoopFuture<Void>?
    /// PUBLISHes the store took at once (ASYNC_FLUSH, nothing else to write): acknowledged after the
    /// actions of the current event.
    private var storedPublishes: [UInt16] = []
    /// PUBLISHes waiting for the store (a sync, a retained write) and not answered yet; reading pauses above
    /// `maximumPendingAppends`.
    private var pendingAppends = 0
    private var readingPaused = false
    /// Above this many unanswered appends the connection stops reading, so a fast publisher (3.1.1 and
    /// QoS 0 have no flow control) cannot make the node buffer without bound; reading resumes at half.
    static let maximumPendingAppends = 1_024
    /// Subscriptions (and the peer-to-peer queue) by `SubscriptionReader.key`.
    var subscriptions: [String: SubscriptionReader] = [:]
    /// Deliveries offered to the machine, by tag.
    var deliveries: [UInt64: DeliveryRecord] = [:]
    var lastDeliveryTag: UInt64 = 0
    /// The client of the attached session.
    var attachedClientIdentifier: String?
    /// The session has a record in the store (persistent, or holding a will): its changes go through `journal`.
    var sessionStored = false
    var journal = SessionJournalQueue()
    /// QoS 2 deliveries finished since the last progress commit: (reader key, offset).
    var completedExactlyOnce: [(key: String, offset: Int64)] = []
    var progressCommit: Scheduled<Void>?
    /// Completes once the session state this connection held is written (set at detach).
    var detachSettled: EventLoopFuture<Void>?
    /// The store is reading (or creating) the session for `attachSession`.
    var sessionBeingLoaded = false
    /// A detach that came while the session was being read: completed once the read is undone.
    var settledAfterLoad: EventLoopPromise<Void>?
    /// The client whose session the journal writes, kept after detach for the last commits.
    var journalClientIdentifier: String?
    /// The message being offered, so `retryDeliveryLater` can put it back.
    var pendingOffer: Offer?
    var needsFlush = false
    /// Messages in and out since the last report to the shared counters (`reportMessageCounts`).
    var messageCounts = GatewayMetrics.MessageCounts()
    /// Between channelRead and channelReadComplete.
    var readInProgress = false
    /// Packets received while a SUBSCRIBE waits for the store node to say where its queues end, in order;
    /// nil when nothing waits.
    private var parkedPackets: [MQTTPacket]?
    /// When a failed store write was last logged, and how many failed since (logStoreFailure).
    private var lastStoreFailureLog: NIODeadline?
    private var unloggedStoreFailures = 0
    var isDelivering = false
    var deliverAgain = false
    /// Who the client is and its ACL rules (MQTTConnectionHandler+Access.swift).
    var access = ConnectionAccess()
    /// The listener this connection came in on and its TLS client certificate (set by `MQTTChannelPipeline`).
    var transport = ConnectionTransport(kind: .tcp)
    /// Why the machine closed the connection, for `mqtt_connections_closed_total`; nil: the peer went away.
    var closeKind: ServerConnectionStateMachine.CloseReason.Kind?

    init(services: GatewayServices, connectionID: UInt64, encoderHandler: MQTTPacketEncoderHandler) {
        self.services = services
        self.connectionID = connectionID
        self.encoderHandler = encoderHandler
        self.machine = ServerConnectionStateMachine(
            configuration: services.configuration.connection, connectionIdentifier: "\(services.instanceIdentifier)-\(connectionID)"
        )
        var logger = services.logger
        logger[metadataKey: "connection"] = "\(connectionID)"
        self.logger = logger
    }

    static var nowMillis: Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000) }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        eventLoop = context.eventLoop
        handle = ConnectionHandle(connectionID: connectionID, handler: self, eventLoop: context.eventLoop)
        // First in the pipeline, whatever the transport, so it counts the bytes on the socket.
        try? context.pipeline.syncOperations.addHandler(ByteCountingHandler(metrics: services.metrics), position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let remote = context.remoteAddress {
            logger[metadataKey: "remote"] = "\(remote)"
        }
        if let handle { services.connectionOpened(handle) }
        services.metrics.connectionOpened()
        run(machine.connectionOpened(nowMillis: Self.nowMillis))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        run(machine.connectionClosed())
        if let clientIdentifier = attachedClientIdentifier {
            // Refused while attaching (the store failed): no detach came, but the registry named this connection.
            services.sessions.detach(clientIdentifier, connectionID: connectionID, settling: nil)
            services.ownership?.release(clientIdentifier, connectionID: connectionID, after: nil)
        }
        // A connection that never attached a session has nothing registered; this is a no-op then.
        removeAllReaders()
        services.connectionClosed(connectionID)
        reportMessageCounts()
        services.metrics.connectionClosed(closeKind ?? .connectionLost)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        if case .publish(let publish) = packet { messageCounts.received[Int(publish.qos.rawValue)] += 1 }
        // What the packets of one read answer is flushed once, at channelReadComplete: one write for a
        // burst of PUBACKs, not one each.
        readInProgress = true
        receive(packet)
    }

    /// Hands `packet` to the machine, unless packets wait for the store to be prepared: then it waits too.
    private func receive(_ packet: MQTTPacket) {
        if parkedPackets != nil {
            parkedPackets?.append(packet)
            return
        }
        if let preparation = storePreparation(for: packet) {
            park(packet, until: preparation)
            return
        }
        run(machine.packetReceived(packet, nowMillis: Self.nowMillis))
    }

    /// What the store must learn before `packet` can be handled, or nil when nothing (always nil for the
    /// store in this process). With store nodes:
    /// - a SUBSCRIBE starts reading at its queues' ends, which the gateway may not know yet, and its
    ///   wildcard filters must be registered for dispatch before the SUBACK;
    /// - a PUBLISH to a first topic whose store node is not known yet waits for its route.
    private func storePreparation(for packet: MQTTPacket) -> (@Sendable () async throws -> Void)? {
        // Runs for every packet: nothing to learn from the store in this process, and nothing to allocate.
        guard services.isClustered else { return nil }
        let store = services.store
        switch packet {
        case .subscribe(let subscribe):
            let filters = subscribe.subscriptions.compactMap { try? TopicFilter($0.topicFilter) }
            let unprepared = store.unpreparedQueues(filters.map(\.lmqName))
            let unregistered = store.unregisteredFilters(filters)
            guard !unprepared.isEmpty || !unregistered.isEmpty, let clientIdentifier = attachedClientIdentifier else { return nil }
            let registering = unregistered.map { DispatchRegistration(filter: $0.string, clientIdentifier: clientIdentifier) }
            return { try await store.prepare(queues: unprepared, registering: registering) }
        case .publish(let publish):
            let unrouted = store.unroutedTopics([publish.topicName])
            guard !unrouted.isEmpty else { return nil }
            return { try await store.prepareRoutes(unrouted) }
        case .connect, .connAck, .pubAck, .pubRec, .pubRel, .pubComp, .subAck, .unsubscribe, .unsubAck, .pingReq, .pingResp,
            .disconnect, .auth:
            return nil
        }
    }

    /// Holds `packet`, and every packet after it (their order matters: a PUBLISH after a SUBSCRIBE to its
    /// topic must reach the new subscription), until `preparation` is done.
    private func park(_ packet: MQTTPacket, until preparation: @escaping @Sendable () async throws -> Void) {
        guard let context, let eventLoop else { return }
        parkedPackets = [packet]
        context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await preparation() }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            if case .failure(let error) = result {
                // Starting a subscription at a guessed offset, or storing on a guessed node, would lose or
                // repeat messages.
                logger.error("the store could not be prepared for a \(packet.type): \(error); closing the connection")
                parkedPackets = nil
                self.context?.close(promise: nil)
                return
            }
            let packets = parkedPackets ?? []
            parkedPackets = nil
            if readingPaused && pendingAppends <= Self.maximumPendingAppends / 2 { readingPaused = false }
            if !readingPaused, let context = self.context {
                context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
                context.read()
            }
            for (index, packet) in packets.enumerated() {
                if parkedPackets != nil {
                    // Parked again: the rest waits behind it, in order.
                    parkedPackets?.append(contentsOf: packets[index...])
                    break
                }
                // The first is the packet just prepared for (its registrations count only once it is handled).
                if index > 0, let preparation = storePreparation(for: packet) {
                    parkedPackets = nil
                    park(packet, until: preparation)
                    parkedPackets?.append(contentsOf: packets[(index + 1)...])
                    break
                }
                run(machine.packetReceived(packet, nowMillis: Self.nowMillis))
            }
            flushIfNeeded()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readInProgress = false
        flushIfNeeded()
        reportMessageCounts()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decodeError = error as? MQTTDecodeError {
            // The decoder stops after an error; the machine says what to tell the client (§4.13).
            logger.info("undecodable packet: \(decodeError)")
            run(machine.decodeFailed(decodeError))
        } else {
            logger.info("connection error: \(error)")
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { deliver() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Events from other connections and the store

    func sessionTakenOver(settled: EventLoopPromise<Void>) {
        run(machine.sessionTakenOver())
        // The detach the machine asked for (or an earlier one) says when the session state is written.
        if let detachSettled {
            detachSettled.cascade(to: settled)
        } else {
            settled.succeed()
        }
    }

    func serverShuttingDown() {
        run(machine.serverShuttingDown())
    }

    func queueHasMessages(_ queue: String) {
        deliver()
    }

    // MARK: - Actions

    func run(_ actions: [ServerConnectionStateMachine.Action]) {
        for action in actions {
            execute(action)
        }
        while !storedPublishes.isEmpty {
            let identifiers = storedPublishes
            storedPublishes = []
            for identifier in identifiers {
                for action in machine.publishStored(packetIdentifier: identifier) { execute(action) }
            }
        }
        submitJournal()
        flushIfNeeded()
    }

    /// Hands the messages counted since the last report to the shared counters.
    func reportMessageCounts() {
        guard !messageCounts.isEmpty else { return }
        services.metrics.add(messageCounts)
        messageCounts = GatewayMetrics.MessageCounts()
    }

    func flushIfNeeded() {
        // A read or a delivery pass in progress flushes when it ends.
        if needsFlush, !readInProgress, !isDelivering, let context {
            needsFlush = false
            context.flush()
            reportMessageCounts()
        }
    }

    private func execute(_ action: ServerConnectionStateMachine.Action) {
        switch action {
        case .send(let packet):
            guard !journal.hold(.packet(packet)) else { return }
            write(packet)
        case .close(let reason):
            guard !journal.hold(.close(reason)) else { return }
            close(reason)
        case .scheduleTimer(let atMillis):
            guard let context else { return }
            timer?.cancel()
            let deadline = NIODeadline.uptimeNanoseconds(UInt64(max(0, atMillis)) * 1_000_000)
            timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                run(machine.timerFired(nowMillis: Self.nowMillis))
            }
        case .configureEncoder(let protocolVersion, let maximumPacketSizeBytes):
            encoderHandler.encoder = MQTTPacketEncoder(protocolVersion: protocolVersion, maxPacketSizeBytes: maximumPacketSizeBytes)
            logger[metadataKey: "protocol"] = "\(protocolVersion)"
        case .authenticate(let connect):
            authenticate(connect)
        case .attachSession(let attachment):
            attachSession(attachment)
        case .storePublish(let publish):
            storePublish(publish)
        case .releaseInboundPacketIdentifier(let identifier):
            // [MQTT-4.3.3-10]: the identifier is free once the PUBREL is recorded; PUBCOMP waits for that.
            if sessionStored { journal.recordBarrier(.inboundReleased(packetIdentifier: identifier)) }
        case .subscribe(let subscribe):
            self.subscribe(subscribe)
        case .unsubscribe(let unsubscribe):
            self.unsubscribe(unsubscribe)
        case .acknowledgeDelivery(let tag):
            finishDelivery(tag)
        case .recordDeliverySent(let tag, let packetIdentifier):
            recordDeliverySent(tag, packetIdentifier: packetIdentifier)
        case .recordDeliveryReleased(let tag, _):
            recordDeliveryReleased(tag)
        case .retryDeliveryLater(let tag):
            retryDeliveryLater(tag)
        case .dropDelivery(let tag, let reason):
            logger.info("delivery dropped: \(reason)")
            services.metrics.messageDropped(GatewayMetrics.DropReason(reason))
            finishDelivery(tag)
        case .detachSession(let detachment):
            detachSession(detachment)
        }
    }

    func write(_ packet: MQTTPacket) {
        guard let context else { return }
        context.write(wrapOutboundOut(packet), promise: nil)
        if case .publish(let publish) = packet { messageCounts.sent[Int(publish.qos.rawValue)] += 1 }
        needsFlush = true
    }

    func close(_ reason: ServerConnectionStateMachine.CloseReason) {
        logger.info("closing: \(reason)")
        closeKind = reason.kind
        guard let context else { return }
        needsFlush = false
        context.flush()
        context.close(promise: nil)
    }

    private func authenticate(_ connect: ConnectPacket) {
        guard let context else { return }
        let request = transport.authRequest(for: connect, remoteAddress: context.remoteAddress?.description)
        let promise = context.eventLoop.makePromise(of: AuthDecision.self)
        promise.completeWithTask { [authManager = services.authManager] in
            await authManager.authenticate(request)
        }
        promise.futureResult.assumeIsolated().whenSuccess { [self] decision in
            switch decision {
            case .allow(let identity):
                access.identity = identity
                run(machine.authenticationCompleted(.allowed))
            case .deny(let reason, let detail):
                services.metrics.authenticationFailed()
                let code = MQTTReasonCode(rawValue: reason.reasonCodeV5) ?? .notAuthorized
                run(machine.authenticationCompleted(.denied(code, detail: detail)))
            }
        }
    }

    private func storePublish(_ publish: PublishPacket) {
        guard let context else { return }
        let eventLoop = context.eventLoop
        let topic: TopicName
        do {
            topic = try TopicName(publish.topicName)
        } catch {
            // The machine checked the topic name; this cannot happen, but answer rather than hang.
            if let identifier = publish.packetIdentifier {
                run(machine.publishRefused(packetIdentifier: identifier, reasonCode: .topicNameInvalid))
            }
            return
        }
        // `$SYS/` is the node's own (SysTopicPublisher): refused like an ACL denial.
        if publishDenial(topic: publish.topicName) != nil || topic.isReservedForServer {
            // v5: PUBACK/PUBREC 0x87. 3.1.1 cannot say so: acknowledged as if stored, and dropped (as mosquitto does).
            if let identifier = publish.packetIdentifier {
                if machine.protocolVersion?.hasProperties == true {
                    run(machine.publishRefused(packetIdentifier: identifier, reasonCode: .notAuthorized))
                } else {
                    storedPublishes.append(identifier)
                }
            }
            return
        }
        // Resolved now, in arrival order, so that a wildcard subscription made before this PUBLISH gets it.
        let queues = services.dispatchQueues(for: topic)
        // A lookup in memory; a new first topic is created in the background (autoCreateFirstTopic).
        services.metadataPublisher?.topicUsed(topic)
        let clientIdentifier = attachedClientIdentifier
        let message = LMQMessage(
            topic: publish.topicName, payload: publish.payload, qos: publish.qos, retain: publish.retain, properties: publish.properties,
            originClientIdentifier: clientIdentifier
        )
        // Written now, on the loop, in arrival order: the store's offsets keep this client's order per topic
        // without one append waiting for the previous one's sync (under SYNC_FLUSH, one group commit covers
        // all of this connection's PUBLISHes in flight).
        let appendStarted = NIODeadline.now()
        let pending: GatewayPendingWrite
        do {
            pending = try services.store.write(message, to: queues)
        } catch {
            logStoreFailure(topic: publish.topicName, error)
            if let identifier = publish.packetIdentifier {
                run(machine.publishRefused(packetIdentifier: identifier, reasonCode: .unspecifiedError, reasonString: Self.storeFailureReason))
            }
            return
        }
        // [MQTT-4.3.3-10]: a stored session records the QoS 2 identifier before PUBREC, so a resend after a
        // reconnect is recognised and not stored twice.
        let pendingPubRel = sessionStored && publish.qos == .exactlyOnce ? publish.packetIdentifier : nil
        guard !pending.isSettled || message.retain || pendingPubRel != nil else {
            // [MQTT-4.3.2-4]: the store holds it per its flush policy (ASYNC_FLUSH: written is enough).
            if let identifier = publish.packetIdentifier { storedPublishes.append(identifier) }
            services.metrics.storeAppended(since: appendStarted)
            return
        }
        let metadata = services.metadata
        let durable = eventLoop.makePromise(of: AppendResult.self)
        // Under SYNC_FLUSH, or on a store node: the acknowledgement waits for the store's answer.
        durable.completeWithTask { try await pending.completion() }
        // Retained messages and identifiers are written one after another, so the last RETAIN of a topic wins.
        let previous = metadataChain ?? eventLoop.makeSucceededVoidFuture()
        let completed = previous.and(durable.futureResult).flatMap { _, stored -> EventLoopFuture<Void> in
            guard message.retain || pendingPubRel != nil else { return eventLoop.makeSucceededVoidFuture() }
            let promise = eventLoop.makePromise(of: Void.self)
            promise.completeWithTask {
                if message.retain {
                    // [MQTT-3.3.1-5], [MQTT-3.3.1-6]: kept (or, with an empty payload, deleted) before the PUBACK.
                    try await metadata.setRetained(RetainedMessage(
                        topic: message.topic, payload: message.payload, qos: message.qos, properties: message.properties,
                        storeTimestampMillis: stored.storeTimestampMillis
                    ))
                }
                if let pendingPubRel, let clientIdentifier {
                    try await metadata.addPendingPubRel(clientIdentifier: clientIdentifier, packetIdentifier: pendingPubRel)
                }
            }
            return promise.futureResult
        }
        if message.retain || pendingPubRel != nil {
            metadataChain = completed.recover { _ in }
        }
        pendingAppends += 1
        if pendingAppends > Self.maximumPendingAppends && !readingPaused {
            readingPaused = true
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
        completed.assumeIsolated().whenComplete { [self] result in
            pendingAppends -= 1
            if readingPaused && pendingAppends <= Self.maximumPendingAppends / 2, parkedPackets == nil, let context = self.context {
                readingPaused = false
                context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
                context.read()
            }
            switch result {
            case .success:
                services.metrics.storeAppended(since: appendStarted)
                // [MQTT-4.3.2-4]: PUBACK only now that the store holds the message per its flush policy.
                if let identifier = publish.packetIdentifier {
                    run(machine.publishStored(packetIdentifier: identifier))
                }
            case .failure(let error):
                logStoreFailure(topic: publish.topicName, error)
                if let identifier = publish.packetIdentifier {
                    run(machine.publishRefused(packetIdentifier: identifier, reasonCode: .unspecifiedError, reasonString: Self.storeFailureReason))
                }
            }
        }
    }

    /// Logs a PUBLISH the store refused: the first of an outage at once, then one line per
    /// ``storeFailureLogInterval`` with how many more failed (a store node that is down refuses every
    /// PUBLISH of a busy client).
    private func logStoreFailure(topic: String, _ error: any Error) {
        let now = NIODeadline.now()
        if let last = lastStoreFailureLog, now - last < Self.storeFailureLogInterval {
            unloggedStoreFailures += 1
            return
        }
        let more = unloggedStoreFailures > 0 ? " (and \(unloggedStoreFailures) more since the last report)" : ""
        logger.error("storing a PUBLISH to \(topic) failed: \(error)\(more)")
        lastStoreFailureLog = now
        unloggedStoreFailures = 0
    }

    static let storeFailureLogInterval: TimeAmount = .seconds(5)

    /// The Reason String of a PUBACK / PUBREC 0x80 for a PUBLISH the store did not take (its store node
    /// down or unreachable, a full disk): what a client can act on, without the store's address.
    static let storeFailureReason = "the message could not be stored; retry later"

    private func subscribe(_ subscribe: SubscribePacket) {
        guard handle != nil, attachedClientIdentifier != nil else { return }
        let subscriptionIdentifier = subscribe.properties.subscriptionIdentifiers.first
        var reasonCodes: [MQTTReasonCode] = []
        for subscription in subscribe.subscriptions {
            guard let filter = try? TopicFilter(subscription.topicFilter) else {
                reasonCodes.append(.topicFilterInvalid)
                continue
            }
            // The ACL and maxSubscriptionsPerClient: refused for this filter only (v5 0x87/0x97, 3.1.1 0x80).
            if let refusal = subscriptionRefusal(filter) {
                reasonCodes.append(refusal)
                continue
            }
            // No operator step for a new wildcard filter: it is listed under its first topic in the background.
            services.metadataPublisher?.subscribed(filter)
            let reader: SubscriptionReader
            let isNew = subscriptions[filter.string] == nil
            if let existing = subscriptions[filter.string] {
                // [MQTT-3.8.4-3]: a subscription to the same filter replaces the old one; the flow goes on.
                existing.options = subscription
                reader = existing
            } else {
                reader = addReader(filter, options: subscription, subscriptionIdentifier: subscriptionIdentifier, storedOffset: nil)
            }
            reader.subscriptionIdentifier = subscriptionIdentifier
            if sessionStored {
                // The SUBACK waits until the subscription is stored.
                journal.recordBarrier(.subscriptionAdded(
                    StoredSubscription(subscription, subscriptionIdentifier: subscriptionIdentifier), lmq: reader.queue,
                    startOffset: reader.committedOffset
                ))
            }
            reasonCodes.append(MQTTReasonCode(rawValue: subscription.maximumQoS.rawValue) ?? .success)
            // [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]: Retain Handling 0 sends the retained
            // messages on every SUBSCRIBE, 1 only for a new subscription, 2 never (3.1.1: always).
            switch subscription.retainHandling {
            case .sendOnSubscribe: fetchRetained(for: reader)
            case .sendOnSubscribeIfNew: if isNew { fetchRetained(for: reader) }
            case .doNotSend: break
            }
        }
        run(machine.subscribeCompleted(packetIdentifier: subscribe.packetIdentifier, reasonCodes: reasonCodes))
    }

    /// Loads the retained messages matching `reader`'s filter; they go out after the SUBACK.
    private func fetchRetained(for reader: SubscriptionReader) {
        guard let eventLoop, let filter = reader.filter else { return }
        let promise = eventLoop.makePromise(of: [RetainedMessage].self)
        let nowMillis = GatewayServices.wallClockMillis
        promise.completeWithTask { [metadata = services.metadata] in
            // [MQTT-3.3.2-5]: expired retained messages are not sent.
            try await metadata.retained(matching: filter, nowMillis: nowMillis, limit: Self.maximumRetainedPerSubscribe)
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let messages):
                guard subscriptions[reader.key] === reader else { return }
                reader.retained.append(contentsOf: messages)
                deliver()
            case .failure(let error):
                logger.error("reading retained messages for \(filter) failed: \(error)")
            }
        }
    }

    /// The most retained messages sent for one subscription.
    static let maximumRetainedPerSubscribe = 10_000

    private func unsubscribe(_ unsubscribe: UnsubscribePacket) {
        var reasonCodes: [MQTTReasonCode] = []
        for topicFilter in unsubscribe.topicFilters {
            guard topicFilter != SubscriptionReader.peerToPeerKey, let reader = subscriptions.removeValue(forKey: topicFilter) else {
                reasonCodes.append(.noSubscriptionExisted)
                continue
            }
            stopReading(reader)
            if let filter = reader.filter, let clientIdentifier = attachedClientIdentifier {
                services.router.removeDispatch(filter, clientIdentifier: clientIdentifier)
            }
            if sessionStored {
                journal.recordBarrier(.subscriptionRemoved(topicFilter: reader.key, lmq: reader.queue))
            }
            reasonCodes.append(.success)
        }
        run(machine.unsubscribeCompleted(packetIdentifier: unsubscribe.packetIdentifier, reasonCodes: reasonCodes))
    }

    /// Starts reading the queue of `filter` (through its group when shared) from `storedOffset`, or from its
    /// end: registered before the end is read, so nothing appended after the SUBACK is missed. Also makes a
    /// wildcard filter a dispatch target for this session.
    @discardableResult
    func addReader(_ filter: TopicFilter, options: Subscription, subscriptionIdentifier: UInt32?, storedOffset: Int64?) -> SubscriptionReader {
        let queue = filter.lmqName
        if let handle, let clientIdentifier = attachedClientIdentifier {
            services.router.addDispatch(filter, clientIdentifier: clientIdentifier)
            services.router.addReader(queue, handle)
        }
        let start = storedOffset ?? services.store.maxOffset(queue: queue)
        let reader = SubscriptionReader(
            filter: filter, key: filter.string, queue: queue, options: options, subscriptionIdentifier: subscriptionIdentifier,
            readOffset: start, committedOffset: start
        )
        if filter.isShared, let handle {
            let store = services.store
            reader.group = services.sharedGroups.join(filter, handle, startOffset: store.maxOffset(queue: queue))
        }
        subscriptions[filter.string] = reader
        return reader
    }

    /// Stops reading `reader`'s queue; a shared subscription hands what it did not finish back to its group.
    func stopReading(_ reader: SubscriptionReader) {
        services.router.removeReader(reader.queue, connectionID: connectionID)
        if let group = reader.group {
            let unfinished = (Array(reader.sharedUnfinished.values) + reader.buffered).sorted { $0.offset < $1.offset }
            reader.sharedUnfinished = [:]
            reader.buffered = []
            services.sharedGroups.leave(group, connectionID: connectionID, unfinished: unfinished)
            reader.group = nil
        }
    }

    /// Stops reading every queue (the dispatch registrations are the session's, see `detachSession`).
    func removeAllReaders() {
        for reader in subscriptions.values {
            stopReading(reader)
        }
        subscriptions = [:]
        deliveries = [:]
    }
}
