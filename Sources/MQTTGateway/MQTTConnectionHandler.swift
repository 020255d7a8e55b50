import Foundation
import LMQStore
import Logging
import MQTTAuth
import MQTTCore
import NIOCore

/// Runs one MQTT connection: feeds what happens (packets, decode errors, timers, answers of the store
/// and the authenticator) to its `ServerConnectionStateMachine` and executes the actions it returns.
/// All state lives on the channel's event loop; other threads reach it through `ConnectionHandle`.
final class MQTTConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = MQTTPacket
    typealias OutboundOut = MQTTPacket

    /// One subscription of this connection, reading its queue. A class because the delivery loop and the
    /// actions it triggers both update it while it sits in `subscriptions`.
    final class SubscriptionReader {
        let filter: TopicFilter
        let queue: String
        var grantedQoS: MQTTQoS
        var retainAsPublished: Bool
        var subscriptionIdentifier: UInt32?
        /// The next offset to read from the store.
        var readOffset: Int64
        /// Read, not yet offered to the machine (or offered and refused for now), in offset order.
        var buffered: [LMQReadResult.Message] = []
        /// Retained messages to send for this subscription, before anything of its queue.
        var retained: [RetainedMessage] = []
        /// Offered and not finished.
        var outstanding: Set<Int64> = []
        /// The machine answered `retryDeliveryLater`: wait for an acknowledgement before offering more.
        var blocked = false

        init(filter: TopicFilter, queue: String, grantedQoS: MQTTQoS, readOffset: Int64) {
            self.filter = filter
            self.queue = queue
            self.grantedQoS = grantedQoS
            self.retainAsPublished = false
            self.readOffset = readOffset
        }

        /// The consume offset: every message below it is finished.
        var acknowledgedOffset: Int64 {
            min(outstanding.min() ?? .max, buffered.first?.offset ?? .max, readOffset)
        }
    }

    private let services: GatewayServices
    private let connectionID: UInt64
    private let encoderHandler: MQTTPacketEncoderHandler
    private var machine: ServerConnectionStateMachine
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var handle: ConnectionHandle?
    private var timer: Scheduled<Void>?
    /// Appends of this connection run one after another, so its messages keep their order per topic.
    private var appendChain: EventLoopFuture<Void>?
    /// PUBLISHes handed to the store and not answered yet; reading pauses above `maximumPendingAppends`.
    private var pendingAppends = 0
    private var readingPaused = false
    /// Above this many unanswered appends the connection stops reading, so a fast publisher (3.1.1 and
    /// QoS 0 have no flow control) cannot make the node buffer without bound; reading resumes at half.
    static let maximumPendingAppends = 1_024
    /// Subscriptions by topic filter as the client wrote it.
    private var subscriptions: [String: SubscriptionReader] = [:]
    /// Deliveries offered to the machine: tag → (topic filter, queue offset; nil for a retained message).
    private var deliveries: [UInt64: (filter: String, offset: Int64?)] = [:]
    private var lastDeliveryTag: UInt64 = 0
    private var attachedClientIdentifier: String?
    private var needsFlush = false
    private var isDelivering = false
    private var deliverAgain = false

    init(services: GatewayServices, connectionID: UInt64, encoderHandler: MQTTPacketEncoderHandler) {
        self.services = services
        self.connectionID = connectionID
        self.encoderHandler = encoderHandler
        self.machine = ServerConnectionStateMachine(configuration: services.configuration.connection, connectionIdentifier: String(connectionID))
        var logger = services.logger
        logger[metadataKey: "connection"] = "\(connectionID)"
        self.logger = logger
    }

    private static var nowMillis: Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000) }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        handle = ConnectionHandle(connectionID: connectionID, handler: self, eventLoop: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let remote = context.remoteAddress {
            logger[metadataKey: "remote"] = "\(remote)"
        }
        if let handle { services.connectionOpened(handle) }
        run(machine.connectionOpened(nowMillis: Self.nowMillis))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        run(machine.connectionClosed())
        // A connection that never attached a session still may have nothing registered; this is a no-op then.
        removeAllSubscriptions()
        services.connectionClosed(connectionID)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        run(machine.packetReceived(packet, nowMillis: Self.nowMillis))
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

    func sessionTakenOver() {
        run(machine.sessionTakenOver())
    }

    func serverShuttingDown() {
        run(machine.serverShuttingDown())
    }

    func queueHasMessages(_ queue: String) {
        deliver()
    }

    // MARK: - Actions

    private func run(_ actions: [ServerConnectionStateMachine.Action]) {
        for action in actions {
            execute(action)
        }
        if needsFlush, let context {
            needsFlush = false
            context.flush()
        }
    }

    private func execute(_ action: ServerConnectionStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .send(let packet):
            context.write(wrapOutboundOut(packet), promise: nil)
            needsFlush = true
        case .close(let reason):
            logger.info("closing: \(reason)")
            needsFlush = false
            context.flush()
            context.close(promise: nil)
        case .scheduleTimer(let atMillis):
            timer?.cancel()
            let deadline = NIODeadline.uptimeNanoseconds(UInt64(max(0, atMillis)) * 1_000_000)
            timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                run(machine.timerFired(nowMillis: Self.nowMillis))
            }
        case .configureEncoder(let protocolVersion, let maximumPacketSizeBytes):
            encoderHandler.encoder = MQTTPacketEncoder(protocolVersion: protocolVersion, maxPacketSizeBytes: maximumPacketSizeBytes)
            logger[metadataKey: "protocol"] = "\(protocolVersion)"
        case .authenticate(let connect):
            authenticate(connect, context: context)
        case .attachSession(let attachment):
            attachSession(attachment)
        case .storePublish(let publish):
            storePublish(publish, context: context)
        case .releaseInboundPacketIdentifier:
            // Inbound QoS 2 identifiers are kept in memory by the machine only: sessions are not
            // persisted yet, so there is nothing in the store to remove.
            break
        case .subscribe(let subscribe):
            self.subscribe(subscribe)
        case .unsubscribe(let unsubscribe):
            self.unsubscribe(unsubscribe)
        case .acknowledgeDelivery(let tag):
            finishDelivery(tag)
        case .recordDeliveryReleased:
            // In-memory only (no persisted sessions yet): the machine itself resends PUBREL on this connection.
            break
        case .retryDeliveryLater(let tag):
            retryDeliveryLater(tag)
        case .dropDelivery(let tag, let reason):
            logger.info("delivery dropped: \(reason)")
            finishDelivery(tag)
        case .detachSession(let detachment):
            detachSession(detachment)
        }
    }

    private func authenticate(_ connect: ConnectPacket, context: ChannelHandlerContext) {
        let request = AuthRequest(
            clientIdentifier: connect.clientIdentifier, username: connect.username, password: connect.password,
            protocolVersion: connect.protocolVersion.rawValue, remoteAddress: context.remoteAddress?.description
        )
        let promise = context.eventLoop.makePromise(of: AuthDecision.self)
        promise.completeWithTask { [authManager = services.authManager] in
            await authManager.authenticate(request)
        }
        promise.futureResult.assumeIsolated().whenSuccess { [self] decision in
            switch decision {
            case .allow:
                run(machine.authenticationCompleted(.allowed))
            case .deny(let reason, let detail):
                let code = MQTTReasonCode(rawValue: reason.reasonCodeV5) ?? .notAuthorized
                run(machine.authenticationCompleted(.denied(code, detail: detail)))
            }
        }
    }

    private func attachSession(_ attachment: ServerConnectionStateMachine.SessionAttachment) {
        guard let handle else { return }
        let clientIdentifier = attachment.clientIdentifier
        attachedClientIdentifier = clientIdentifier
        logger[metadataKey: "client"] = "\(clientIdentifier)"
        if let previous = services.sessions.attach(clientIdentifier, handle) {
            logger.info("taking over the session of client \(clientIdentifier) from connection \(previous.connectionID)")
            previous.sessionTakenOver()
        }
        // Sessions are not kept in the store yet, so there is never one to resume ([MQTT-3.2.2-2]).
        run(machine.sessionAttached(sessionPresent: false, nowMillis: Self.nowMillis))
    }

    private func detachSession(_ detachment: ServerConnectionStateMachine.SessionDetachment) {
        if !detachment.sessionTakenOver {
            services.sessions.detach(detachment.clientIdentifier, connectionID: connectionID)
        }
        attachedClientIdentifier = nil
        removeAllSubscriptions()
        if let will = detachment.willToPublish {
            // The will is published at once: Will Delay Interval is not honoured yet.
            guard let topic = try? TopicName(will.topicName) else { return }
            let message = LMQMessage(topic: will.topicName, payload: will.payload, qos: will.qos, retain: will.retain, properties: will.properties)
            let queues = services.router.queues(for: topic)
            let store = services.store
            let logger = self.logger
            Task {
                do {
                    _ = try await store.append(message, to: queues)
                } catch {
                    logger.error("publishing the will of \(detachment.clientIdentifier) failed: \(error)")
                }
            }
        }
    }

    private func storePublish(_ publish: PublishPacket, context: ChannelHandlerContext) {
        let eventLoop = context.eventLoop
        let queues: [String]
        do {
            queues = services.router.queues(for: try TopicName(publish.topicName))
        } catch {
            // The machine checked the topic name; this cannot happen, but answer rather than hang.
            if let identifier = publish.packetIdentifier {
                run(machine.publishRefused(packetIdentifier: identifier, reasonCode: .topicNameInvalid))
            }
            return
        }
        let message = LMQMessage(
            topic: publish.topicName, payload: publish.payload, qos: publish.qos, retain: publish.retain, properties: publish.properties
        )
        let store = services.store
        let metadata = services.metadata
        let previous = appendChain ?? eventLoop.makeSucceededVoidFuture()
        let appended = previous.flatMap { () -> EventLoopFuture<AppendResult> in
            let promise = eventLoop.makePromise(of: AppendResult.self)
            promise.completeWithTask {
                let result = try await store.append(message, to: queues)
                if message.retain {
                    // [MQTT-3.3.1-5], [MQTT-3.3.1-6]: kept (or, with an empty payload, deleted) before the PUBACK.
                    try await metadata.setRetained(RetainedMessage(
                        topic: message.topic, payload: message.payload, qos: message.qos, properties: message.properties,
                        storeTimestampMillis: result.storeTimestampMillis
                    ))
                }
                return result
            }
            return promise.futureResult
        }
        appendChain = appended.map { _ in }.recover { _ in }
        pendingAppends += 1
        if pendingAppends > Self.maximumPendingAppends && !readingPaused {
            readingPaused = true
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
        appended.assumeIsolated().whenComplete { [self] result in
            pendingAppends -= 1
            if readingPaused && pendingAppends <= Self.maximumPendingAppends / 2, let context = self.context {
                readingPaused = false
                context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
                context.read()
            }
            switch result {
            case .success:
                // [MQTT-4.3.2-4]: PUBACK only now that the store holds the message per its flush policy.
                if let identifier = publish.packetIdentifier {
                    run(machine.publishStored(packetIdentifier: identifier))
                }
            case .failure(let error):
                logger.error("storing a PUBLISH to \(publish.topicName) failed: \(error)")
                if let identifier = publish.packetIdentifier {
                    run(machine.publishRefused(packetIdentifier: identifier, reasonCode: .implementationSpecificError))
                }
            }
        }
    }

    private func subscribe(_ subscribe: SubscribePacket) {
        guard let handle else { return }
        let subscriptionIdentifier = subscribe.properties.subscriptionIdentifiers.first
        var reasonCodes: [MQTTReasonCode] = []
        for subscription in subscribe.subscriptions {
            guard let filter = try? TopicFilter(subscription.topicFilter) else {
                reasonCodes.append(.topicFilterInvalid)
                continue
            }
            if filter.isShared {
                // Shared subscriptions need group delivery, which this node does not do yet.
                reasonCodes.append(.sharedSubscriptionsNotSupported)
                continue
            }
            let reader: SubscriptionReader
            let isNew = subscriptions[filter.string] == nil
            if let existing = subscriptions[filter.string] {
                // [MQTT-3.8.4-3]: a subscription to the same filter replaces the old one; the flow goes on.
                existing.grantedQoS = subscription.maximumQoS
                reader = existing
            } else {
                // Registered before the tail is read, so nothing appended after the SUBACK is missed.
                let queue = services.router.add(filter, handle)
                reader = SubscriptionReader(
                    filter: filter, queue: queue, grantedQoS: subscription.maximumQoS, readOffset: services.store.maxOffset(queue: queue)
                )
                subscriptions[filter.string] = reader
            }
            reader.retainAsPublished = subscription.retainAsPublished
            reader.subscriptionIdentifier = subscriptionIdentifier
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
        guard let eventLoop = context?.eventLoop else { return }
        let promise = eventLoop.makePromise(of: [RetainedMessage].self)
        let filter = reader.filter
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1_000)
        promise.completeWithTask { [metadata = services.metadata] in
            // [MQTT-3.3.2-5]: expired retained messages are not sent.
            try await metadata.retained(matching: filter, nowMillis: nowMillis, limit: Self.maximumRetainedPerSubscribe)
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let messages):
                guard subscriptions[filter.string] === reader else { return }
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
            if let reader = subscriptions.removeValue(forKey: topicFilter) {
                services.router.remove(reader.filter, connectionID: connectionID)
                reasonCodes.append(.success)
            } else {
                reasonCodes.append(.noSubscriptionExisted)
            }
        }
        run(machine.unsubscribeCompleted(packetIdentifier: unsubscribe.packetIdentifier, reasonCodes: reasonCodes))
    }

    private func removeAllSubscriptions() {
        for reader in subscriptions.values {
            services.router.remove(reader.filter, connectionID: connectionID)
        }
        subscriptions = [:]
        deliveries = [:]
    }

    // MARK: - Delivery

    private func finishDelivery(_ tag: ServerConnectionStateMachine.DeliveryTag) {
        guard let delivery = deliveries.removeValue(forKey: tag.rawValue) else { return }
        if let offset = delivery.offset {
            subscriptions[delivery.filter]?.outstanding.remove(offset)
        }
        for reader in subscriptions.values { reader.blocked = false }
        deliver()
    }

    private func retryDeliveryLater(_ tag: ServerConnectionStateMachine.DeliveryTag) {
        guard let delivery = deliveries.removeValue(forKey: tag.rawValue), let reader = subscriptions[delivery.filter] else { return }
        reader.blocked = true
        // Put it back in front, so it goes before anything after it on its queue.
        switch pendingRetry {
        case .stored(let message)?:
            reader.outstanding.remove(message.offset)
            if message.offset == delivery.offset { reader.buffered.insert(message, at: 0) }
        case .retained(let message)?:
            reader.retained.insert(message, at: 0)
        case nil:
            break
        }
        pendingRetry = nil
    }

    /// A message being offered to the machine.
    private enum Offer {
        case stored(LMQReadResult.Message)
        case retained(RetainedMessage)
    }

    /// The message being offered, so `retryDeliveryLater` can put it back.
    private var pendingRetry: Offer?

    /// Offers what the subscriptions' queues hold to the machine until the client's window is full, the
    /// queues are drained or the channel stops being writable.
    private func deliver() {
        guard !isDelivering else {
            deliverAgain = true
            return
        }
        isDelivering = true
        defer { isDelivering = false }
        repeat {
            deliverAgain = false
            for reader in Array(subscriptions.values) {
                deliver(from: reader)
            }
        } while deliverAgain
    }

    private func deliver(from reader: SubscriptionReader) {
        let batchSize = services.configuration.deliveryBatchSize
        // Bounded: each pass offers one message or stops.
        for _ in 0..<(batchSize * 4) {
            guard machine.state == .connected, let context, context.channel.isWritable, !reader.blocked,
                subscriptions[reader.filter.string] === reader
            else { return }
            lastDeliveryTag += 1
            let tag = lastDeliveryTag
            let publish: PublishPacket
            if !reader.retained.isEmpty {
                let message = reader.retained.removeFirst()
                deliveries[tag] = (reader.filter.string, nil)
                pendingRetry = .retained(message)
                // [MQTT-3.3.1-8]: sent because of a new subscription, so RETAIN is set.
                publish = PublishPacket(
                    topicName: message.topic, payload: message.payload, qos: min(message.qos, reader.grantedQoS), retain: true,
                    properties: withSubscriptionIdentifier(message.properties, reader)
                )
            } else {
                if reader.buffered.isEmpty {
                    guard refill(reader) else { return }
                }
                let message = reader.buffered.removeFirst()
                deliveries[tag] = (reader.filter.string, message.offset)
                reader.outstanding.insert(message.offset)
                pendingRetry = .stored(message)
                publish = publication(of: message.message, for: reader)
            }
            run(machine.deliveryRequested(.init(tag: .init(tag), publish: publish)))
            pendingRetry = nil
        }
        // More may be waiting: come back after others had their turn.
        context?.eventLoop.assumeIsolated().execute { [self] in deliver() }
    }

    /// Reads the next batch of `reader`'s queue; false when there is nothing new.
    private func refill(_ reader: SubscriptionReader) -> Bool {
        let store = services.store
        guard reader.readOffset < store.maxOffset(queue: reader.queue) else { return false }
        do {
            // Reads are from memory-mapped segments and bounded by the batch size, so they stay on the loop.
            let result = try store.read(queue: reader.queue, from: reader.readOffset, maxMessages: services.configuration.deliveryBatchSize)
            switch result.status {
            case .found:
                reader.buffered = result.messages
                reader.readOffset = result.nextOffset
                return true
            case .offsetMovedForward:
                logger.warning("queue \(reader.queue): offset \(reader.readOffset) was deleted by retention, going on from \(result.nextOffset)")
                reader.readOffset = result.nextOffset
                return false
            case .offsetPastEnd:
                reader.readOffset = result.nextOffset
                return false
            case .noNewMessages:
                reader.readOffset = max(reader.readOffset, result.nextOffset)
                return false
            }
        } catch {
            logger.error("reading queue \(reader.queue) failed: \(error)")
            return false
        }
    }

    /// The PUBLISH as this subscriber gets it.
    private func publication(of stored: StoredMessage, for reader: SubscriptionReader) -> PublishPacket {
        let message = stored.message
        let properties = withSubscriptionIdentifier(message.properties, reader)
        return PublishPacket(
            topicName: message.topic,
            payload: message.payload,
            qos: min(message.qos, reader.grantedQoS),  // [MQTT-3.8.4-8]
            // [MQTT-3.3.1-9], [MQTT-3.3.1-12]: live deliveries carry RETAIN only with Retain As Published.
            retain: reader.retainAsPublished && message.retain,
            properties: properties
        )
    }

    /// `properties` plus the Subscription Identifier of `reader`'s SUBSCRIBE, if it had one ([MQTT-3.3.4-3]).
    private func withSubscriptionIdentifier(_ properties: MQTTProperties, _ reader: SubscriptionReader) -> MQTTProperties {
        guard let identifier = reader.subscriptionIdentifier else { return properties }
        return MQTTProperties(Array(properties) + [.subscriptionIdentifier(identifier)])
    }
}
