import LMQStore
import MQTTCore
import NIOCore
import StoreNode

/// Sessions: attaching (new or resumed from the store), the journal of a stored session, detaching.
///
/// A session has a record in the store when it outlives its connection (Session Expiry Interval > 0, or
/// 3.1.1 CleanSession 0) or has a will (so that a node that dies still publishes it). Its subscriptions,
/// consume offsets, inbound QoS 2 identifiers and outbound QoS 1/2 deliveries are written through
/// `journal`; everything else lives only as long as the connection.
extension MQTTConnectionHandler {
    /// What the store had for a session at attach time.
    struct LoadedSession: Sendable {
        var record: SessionRecord
        var offsets: [String: Int64]
        var deliveries: [SessionDelivery]
    }

    /// The outcome of reading (and creating, or clearing) a session in the store.
    enum AttachOutcome: Sendable {
        /// A new session; `stored` says whether it has a record.
        case fresh(stored: Bool)
        case resumed(LoadedSession)
    }

    // MARK: - Attach

    func attachSession(_ requested: ServerConnectionStateMachine.SessionAttachment) {
        guard let handle, let eventLoop else { return }
        // The ACL is compiled for this client; a will it may not publish is dropped here.
        let attachment = authorizedAttachment(requested)
        let clientIdentifier = attachment.clientIdentifier
        attachedClientIdentifier = clientIdentifier
        logger[metadataKey: "client"] = "\(clientIdentifier)"
        // [MQTT-3.1.3-9]: a new connection before the Will Delay Interval ends means the will is not sent.
        services.wills.cancel(clientIdentifier: clientIdentifier)
        let (previous, settling) = services.sessions.attach(clientIdentifier, handle)
        let takenOver = eventLoop.makePromise(of: Void.self)
        if let previous {
            logger.info("taking over the session of client \(clientIdentifier) from connection \(previous.connectionID)")
            previous.sessionTakenOver(settled: takenOver)
        } else {
            takenOver.succeed()
        }
        // The session is read once the connections that held it have written it.
        let ready = takenOver.futureResult.and(settling ?? eventLoop.makeSucceededVoidFuture())
        let services = self.services
        let connectionID = self.connectionID
        let loaded = ready.flatMap { _ in
            let promise = eventLoop.makePromise(of: AttachOutcome.self)
            promise.completeWithTask {
                // Cluster mode: a connection of this client on another gateway is taken over first.
                try await services.ownership?.claim(clientIdentifier, connectionID: connectionID)
                return try await Self.loadSession(attachment, services: services)
            }
            return promise.futureResult
        }
        sessionBeingLoaded = true
        loaded.assumeIsolated().whenComplete { [self] result in
            sessionBeingLoaded = false
            guard machine.state == .attachingSession else {
                // The connection closed while the session was read: it is not connected after all. The next
                // connection of this client reads the session only once that is written (`settledAfterLoad`).
                let settled = settledAfterLoad
                settledAfterLoad = nil
                guard case .success(let outcome) = result else {
                    settled?.succeed()
                    return
                }
                Self.abandon(outcome, attachment, services: services, then: settled)
                return
            }
            switch result {
            case .success(.fresh(let stored)):
                sessionStored = stored
                startPeerToPeerReader(storedOffset: nil)
                run(machine.sessionAttached(sessionPresent: false, nowMillis: Self.nowMillis))
            case .success(.resumed(let session)):
                sessionStored = true
                let resumption = resume(session)
                run(machine.sessionAttached(sessionPresent: true, resumption: resumption, nowMillis: Self.nowMillis))
            case .failure(let error):
                logger.error("attaching the session of \(clientIdentifier) failed: \(error)")
                run(machine.sessionAttachFailed(detail: "the session store failed"))
                return
            }
            deliver()
        }
    }

    /// Reads the session of `attachment`'s client; discards it for Clean Start ([MQTT-3.1.2-4]) or when it
    /// expired; creates the record a new session needs.
    static func loadSession(_ attachment: ServerConnectionStateMachine.SessionAttachment, services: GatewayServices) async throws -> AttachOutcome {
        let metadata = services.metadata
        let clientIdentifier = attachment.clientIdentifier
        let group = LMQNaming.consumerGroupName(clientId: clientIdentifier)
        let now = GatewayServices.wallClockMillis
        var existing = try await metadata.session(clientIdentifier: clientIdentifier)
        // A store node is asked where the session's queues end, so that reading starts at the right offset.
        var queues = [LMQNaming.p2pLMQName(clientId: clientIdentifier)]
        var filters: [TopicFilter] = []
        if let existing, !attachment.cleanStart {
            filters = existing.subscriptions.compactMap { try? TopicFilter($0.topicFilter) }
            queues += filters.map(\.lmqName)
        }
        let registering = services.store.unregisteredFilters(filters).map {
            DispatchRegistration(filter: $0.string, clientIdentifier: clientIdentifier)
        }
        try await services.store.prepare(queues: services.store.unpreparedQueues(queues), registering: registering)
        if let record = existing, let expiresAt = record.expiresAtMillis, expiresAt <= now {
            existing = nil
            try await services.endSession(record)
        }
        let will = attachment.will.map(StoredWill.init)
        guard let record = existing, !attachment.cleanStart else {
            if let record = existing {
                try await services.endSession(record)
            }
            guard attachment.sessionExpiryIntervalSeconds > 0 || will != nil else { return .fresh(stored: false) }
            try await metadata.putSession(SessionRecord(
                clientIdentifier: clientIdentifier, protocolVersion: attachment.protocolVersion, will: will,
                sessionExpiryIntervalSeconds: attachment.sessionExpiryIntervalSeconds, gatewayNode: services.nodeName
            ))
            return .fresh(stored: true)
        }
        try await metadata.markConnected(
            clientIdentifier: clientIdentifier, gatewayNode: services.nodeName, protocolVersion: attachment.protocolVersion,
            sessionExpiryIntervalSeconds: attachment.sessionExpiryIntervalSeconds
        )
        // [MQTT-3.1.2-7]: the will of this connection replaces any stored one.
        try await metadata.setWill(clientIdentifier: clientIdentifier, will)
        var resumed = record
        resumed.will = will
        resumed.sessionExpiryIntervalSeconds = attachment.sessionExpiryIntervalSeconds
        return .resumed(LoadedSession(
            record: resumed,
            offsets: try await metadata.offsets(group: group),
            deliveries: try await metadata.sessionDeliveries(clientIdentifier: clientIdentifier)
        ))
    }

    /// Undoes what `loadSession` recorded for a connection that closed before it could use it: a new session
    /// that ends with its connection is deleted, any other is recorded as disconnected now.
    private static func abandon(
        _ outcome: AttachOutcome, _ attachment: ServerConnectionStateMachine.SessionAttachment, services: GatewayServices,
        then settled: EventLoopPromise<Void>?
    ) {
        switch outcome {
        case .fresh(stored: false):
            settled?.succeed()
        case .fresh(stored: true), .resumed:
            let clientIdentifier = attachment.clientIdentifier
            services.maintenance.spawn {
                defer { settled?.succeed() }
                do {
                    if attachment.sessionExpiryIntervalSeconds == 0 {
                        try await services.endSession(clientIdentifier: clientIdentifier)
                    } else {
                        try await services.metadata.markDisconnected(clientIdentifier: clientIdentifier, atMillis: GatewayServices.wallClockMillis, sessionExpiryIntervalSeconds: nil)
                    }
                } catch {
                    services.logger.error("releasing the session of \(clientIdentifier) failed: \(error)")
                }
            }
        }
    }

    /// Rebuilds the readers of a resumed session and the deliveries it had in flight.
    private func resume(_ session: LoadedSession) -> ServerConnectionStateMachine.SessionResumption {
        guard let clientIdentifier = attachedClientIdentifier else { return .init() }
        for stored in session.record.subscriptions {
            guard let filter = try? TopicFilter(stored.topicFilter) else { continue }
            // A shared subscription reads through its group, whose cursor is not the session's.
            let point = filter.isShared ? ResumePoint(start: nil) : resumePoint(queue: filter.lmqName, storedOffset: session.offsets[filter.lmqName])
            let reader = addReader(
                filter, options: stored.subscription, subscriptionIdentifier: stored.subscriptionIdentifier, storedOffset: point.start
            )
            reader.skipAhead = point.skipAhead
        }
        let peerToPeerQueue = LMQNaming.p2pLMQName(clientId: clientIdentifier)
        let peerToPeer = resumePoint(queue: peerToPeerQueue, storedOffset: session.offsets[peerToPeerQueue])
        startPeerToPeerReader(storedOffset: peerToPeer.start)
        subscriptions[SubscriptionReader.peerToPeerKey]?.skipAhead = peerToPeer.skipAhead

        // The deliveries in flight, resent with their packet identifiers ([MQTT-4.4.0-1]); finished ones
        // above the consume offset are skipped. An identifier used twice keeps only its latest delivery.
        var inflight: [ServerConnectionStateMachine.InflightDelivery] = []
        var identifiers: Set<UInt16> = []
        for delivery in session.deliveries.reversed() {
            guard let reader = subscriptions[delivery.topicFilter], reader.group == nil, delivery.queueOffset >= reader.readOffset else { continue }
            reader.skippedOffsets.insert(delivery.queueOffset)
            guard delivery.state != .completed, identifiers.insert(delivery.packetIdentifier).inserted,
                let message = readOne(reader.queue, at: delivery.queueOffset),
                let publish = publication(of: message, for: reader)
            else { continue }
            var resent = publish
            resent.qos = delivery.qos
            lastDeliveryTag += 1
            deliveries[lastDeliveryTag] = DeliveryRecord(key: reader.key, offset: delivery.queueOffset, qos: delivery.qos)
            reader.outstanding.insert(delivery.queueOffset)
            inflight.append(.init(
                tag: .init(lastDeliveryTag), packetIdentifier: delivery.packetIdentifier, publish: resent,
                released: delivery.state == .released && delivery.qos == .exactlyOnce
            ))
        }
        logger.info("resumed session: \(subscriptions.count - 1) subscriptions, \(inflight.count) deliveries in flight")
        return .init(inflightDeliveries: inflight.reversed(), awaitingPubRelPacketIdentifiers: session.record.pendingPubRelPacketIdentifiers)
    }

    /// Every session reads its peer-to-peer queue, `<firstTopic>/p2p/<clientId>` (DESIGN.md), without subscribing.
    private func startPeerToPeerReader(storedOffset: Int64?) {
        guard let handle, let clientIdentifier = attachedClientIdentifier else { return }
        let queue = LMQNaming.p2pLMQName(clientId: clientIdentifier)
        let start = storedOffset ?? services.store.maxOffset(queue: queue)
        services.router.addReader(queue, handle)
        let key = SubscriptionReader.peerToPeerKey
        subscriptions[key] = SubscriptionReader(
            filter: nil, key: key, queue: queue, options: Subscription(topicFilter: key, maximumQoS: .exactlyOnce),
            subscriptionIdentifier: nil, readOffset: start, committedOffset: start
        )
        if sessionStored && storedOffset == nil {
            // Messages sent to it while the session is offline are read from here on.
            journal.recordLazily(.consumeOffset(topicFilter: key, lmq: queue, offset: start))
        }
    }

    /// The message at `offset` of `queue`, if retention has not deleted it.
    private func readOne(_ queue: String, at offset: Int64) -> StoredMessage? {
        guard let result = try? services.store.read(queue: queue, from: offset, maxMessages: 1),
            let first = result.messages.first, first.offset == offset
        else { return nil }
        return first.message
    }

    // MARK: - The journal of a stored session

    func recordDeliverySent(_ tag: ServerConnectionStateMachine.DeliveryTag, packetIdentifier: UInt16) {
        // A shared subscription's unfinished messages go back to its group, not into the session.
        guard sessionStored, let delivery = deliveries[tag.rawValue], let offset = delivery.offset,
            subscriptions[delivery.key]?.group == nil
        else { return }
        journal.recordBarrier(.deliverySent(SessionDelivery(
            topicFilter: delivery.key, queueOffset: offset, packetIdentifier: packetIdentifier, qos: .exactlyOnce, state: .sent
        )))
    }

    func recordDeliveryReleased(_ tag: ServerConnectionStateMachine.DeliveryTag) {
        guard sessionStored, let delivery = deliveries[tag.rawValue], let offset = delivery.offset,
            subscriptions[delivery.key]?.group == nil
        else { return }
        journal.recordBarrier(.deliveryState(topicFilter: delivery.key, queueOffset: offset, .released))
    }

    /// A delivery finished: its offset may advance; a stored session writes that a little later, in a batch.
    func deliveryFinished(_ delivery: DeliveryRecord) {
        guard sessionStored, let offset = delivery.offset else { return }
        if delivery.qos == .exactlyOnce {
            completedExactlyOnce.append((delivery.key, offset))
        }
        guard progressCommit == nil, let eventLoop else { return }
        progressCommit = eventLoop.assumeIsolated().scheduleTask(in: Self.progressCommitInterval) { [self] in
            progressCommit = nil
            recordProgress()
            submitJournal()
        }
    }

    /// How long acknowledgements gather before their consume offsets are written (a crash redelivers at
    /// most this much, QoS 1 only: finished QoS 2 deliveries are skipped by their rows).
    static let progressCommitInterval = TimeAmount.milliseconds(100)

    /// Journals the finished QoS 2 deliveries and the consume offsets that moved.
    func recordProgress() {
        for (key, offset) in completedExactlyOnce {
            journal.recordLazily(.deliveryState(topicFilter: key, queueOffset: offset, .completed))
        }
        completedExactlyOnce = []
        for reader in subscriptions.values where reader.group == nil {
            let acknowledged = reader.acknowledgedOffset
            guard acknowledged > reader.committedOffset else { continue }
            reader.committedOffset = acknowledged
            journal.recordLazily(.consumeOffset(topicFilter: reader.key, lmq: reader.queue, offset: acknowledged))
        }
    }

    /// Starts a commit of the journal if one is due; when it is durable, the packets that waited go out.
    func submitJournal() {
        guard let clientIdentifier = attachedClientIdentifier ?? journalClientIdentifier, let eventLoop,
            let entries = journal.beginCommit()
        else { return }
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { [metadata = services.metadata] in
            try await metadata.applySessionJournal(clientIdentifier: clientIdentifier, entries)
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success:
                for step in journal.commitFinished() {
                    switch step {
                    case .packet(let packet): write(packet)
                    case .close(let reason): close(reason)
                    case .callback(let callback): callback()
                    case .barrier: break
                    }
                }
                submitJournal()
                flushIfNeeded()
            case .failure(let error):
                // Without the record, exactly-once cannot be kept: nothing that waited goes out.
                logger.error("writing the session of \(clientIdentifier) failed, closing: \(error)")
                for callback in journal.commitFailed() { callback() }
                context?.close(promise: nil)
            }
        }
    }

    // MARK: - Detach

    func detachSession(_ detachment: ServerConnectionStateMachine.SessionDetachment) {
        guard let eventLoop else { return }
        let clientIdentifier = detachment.clientIdentifier
        progressCommit?.cancel()
        progressCommit = nil
        let settled = eventLoop.makePromise(of: Void.self)
        detachSettled = settled.futureResult
        if !detachment.sessionTakenOver {
            services.sessions.detach(clientIdentifier, connectionID: connectionID, settling: settled.futureResult)
            services.ownership?.release(clientIdentifier, connectionID: connectionID, after: settled.futureResult)
        }
        journalClientIdentifier = clientIdentifier
        attachedClientIdentifier = nil
        // A will the ACL denied is never published (MQTTConnectionHandler+Access.swift).
        let will = access.willDenied ? nil : detachment.willToPublish.map(StoredWill.init)
        let now = GatewayServices.wallClockMillis
        let services = self.services
        let sessionEnds = detachment.sessionExpiryIntervalSeconds == 0 && !detachment.sessionTakenOver
        // [MQTT-3.1.3-9]: after a takeover the will waits for its delay, which the new connection cancels.
        let willDelayed = (will?.delayIntervalSeconds ?? 0) > 0

        if !sessionStored || sessionEnds {
            // The session ends with the connection: its wildcard filters stop being dispatch targets.
            for reader in subscriptions.values {
                if let filter = reader.filter { services.router.removeDispatch(filter, clientIdentifier: clientIdentifier) }
            }
            let stored = sessionStored
            // A session still being read is released by the read's completion (`abandon`), which then settles.
            let settledHere: EventLoopPromise<Void>? = sessionBeingLoaded ? nil : settled
            if sessionBeingLoaded { settledAfterLoad = settled }
            let finish: @Sendable () -> Void = {
                services.maintenance.spawn {
                    // The will first: subscribers should not wait for the record's deletion.
                    if let will, !(detachment.sessionTakenOver && willDelayed) {
                        await services.publishWill(will, clientIdentifier: clientIdentifier, sessionStored: false)
                    }
                    if stored {
                        do {
                            try await services.endSession(clientIdentifier: clientIdentifier)
                        } catch {
                            services.logger.error("deleting the session of \(clientIdentifier) failed: \(error)")
                        }
                    }
                    settledHere?.succeed()
                }
            }
            if !journal.hold(.callback(finish)) { finish() }
            return
        }

        // A stored session that goes on: what was in flight, how far each queue was read, and the will.
        var unfinished: [SessionDelivery] = []
        for delivery in detachment.unfinishedDeliveries {
            guard let record = deliveries[delivery.tag.rawValue], let offset = record.offset, subscriptions[record.key]?.group == nil else { continue }
            unfinished.append(SessionDelivery(
                topicFilter: record.key, queueOffset: offset, packetIdentifier: delivery.packetIdentifier, qos: delivery.publish.qos,
                state: delivery.released ? .released : .sent
            ))
        }
        recordProgress()
        journal.recordBarrier(.unfinishedDeliveries(unfinished))
        if !detachment.sessionTakenOver {
            journal.recordBarrier(.disconnected(atMillis: now, sessionExpiryIntervalSeconds: detachment.sessionExpiryIntervalSeconds, will: will))
        }
        let expiry = detachment.sessionExpiryIntervalSeconds
        let takenOver = detachment.sessionTakenOver
        let finish: @Sendable () -> Void = {
            settled.succeed()
            guard let will else { return }
            if takenOver {
                if !willDelayed {
                    services.maintenance.spawn { await services.publishWill(will, clientIdentifier: clientIdentifier, sessionStored: false) }
                }
            } else {
                services.publishWill(will, clientIdentifier: clientIdentifier, sessionStored: true, sessionExpiryIntervalSeconds: expiry, disconnectedAtMillis: now)
            }
        }
        _ = journal.hold(.callback(finish))
        submitJournal()
    }
}
