import LMQStore
import MQTTCore
import NIOCore

/// Delivery: reading the subscriptions' queues and offering their messages to the machine, which sends
/// them within the client's receive window.
extension MQTTConnectionHandler {
    /// A message being offered to the machine.
    enum Offer {
        case stored(LMQReadResult.Message)
        case retained(RetainedMessage)
    }

    func finishDelivery(_ tag: ServerConnectionStateMachine.DeliveryTag) {
        guard let delivery = deliveries.removeValue(forKey: tag.rawValue) else { return }
        if let offset = delivery.offset, let reader = subscriptions[delivery.key] {
            reader.outstanding.remove(offset)
            if let group = reader.group {
                reader.sharedUnfinished[offset] = nil
                group.finish(offset)
            }
        }
        deliveryFinished(delivery)
        for reader in subscriptions.values { reader.blocked = false }
        deliver()
    }

    func retryDeliveryLater(_ tag: ServerConnectionStateMachine.DeliveryTag) {
        guard let delivery = deliveries.removeValue(forKey: tag.rawValue), let reader = subscriptions[delivery.key] else { return }
        reader.blocked = true
        // Put it back in front, so it goes before anything after it on its queue.
        switch pendingOffer {
        case .stored(let message)?:
            reader.outstanding.remove(message.offset)
            if message.offset == delivery.offset { reader.buffered.insert(message, at: 0) }
        case .retained(let message)?:
            reader.retained.insert(message, at: 0)
        case nil:
            break
        }
        pendingOffer = nil
    }

    /// Offers what the subscriptions' queues hold to the machine until the client's window is full, the
    /// queues are drained or the channel stops being writable.
    func deliver() {
        guard !isDelivering else {
            deliverAgain = true
            return
        }
        isDelivering = true
        repeat {
            deliverAgain = false
            for reader in Array(subscriptions.values) {
                deliver(from: reader)
            }
        } while deliverAgain
        isDelivering = false
        // One flush (one write) for the whole pass.
        flushIfNeeded()
    }

    private func deliver(from reader: SubscriptionReader) {
        let batchSize = services.configuration.deliveryBatchSize
        // Bounded: each pass offers one message or stops.
        for _ in 0..<(batchSize * 4) {
            guard machine.state == .connected, let context, context.channel.isWritable, !reader.blocked,
                subscriptions[reader.key] === reader
            else { return }
            let publish: PublishPacket
            let record: DeliveryRecord
            if !reader.retained.isEmpty {
                let message = reader.retained.removeFirst()
                guard let retained = retainedPublication(of: message, for: reader) else { continue }
                pendingOffer = .retained(message)
                publish = retained
                record = DeliveryRecord(key: reader.key, offset: nil, qos: publish.qos)
            } else {
                if reader.buffered.isEmpty {
                    guard refill(reader) else { return }
                }
                let message = reader.buffered.removeFirst()
                guard let live = publication(of: message.message, for: reader) else {
                    // Not for this client (No Local) or expired: finished without being sent.
                    if remainingLifetime(message.message.message.properties, storedAtMillis: message.message.storeTimestampMillis) == nil {
                        services.metrics.messageDropped(.expired)
                    }
                    reader.sharedUnfinished[message.offset] = nil
                    reader.group?.finish(message.offset)
                    deliveryFinished(DeliveryRecord(key: reader.key, offset: message.offset, qos: .atMostOnce))
                    continue
                }
                reader.outstanding.insert(message.offset)
                pendingOffer = .stored(message)
                publish = live
                record = DeliveryRecord(key: reader.key, offset: message.offset, qos: publish.qos)
            }
            lastDeliveryTag += 1
            let tag = lastDeliveryTag
            deliveries[tag] = record
            run(machine.deliveryRequested(.init(tag: .init(tag), publish: publish)))
            pendingOffer = nil
        }
        // More may be waiting: come back after others had their turn.
        context?.eventLoop.assumeIsolated().execute { [self] in deliver() }
    }

    /// Reads the next batch of `reader`'s queue; false when there is nothing new.
    private func refill(_ reader: SubscriptionReader) -> Bool {
        let store = services.store
        if let group = reader.group {
            // At most what the client's window takes now, so the other members get the rest.
            let room = max(1, min(services.configuration.deliveryBatchSize, machine.availableDeliverySlots))
            let taken = group.take(for: connectionID, maximum: room, store: store)
            for message in taken { reader.sharedUnfinished[message.offset] = message }
            reader.buffered = taken
            return !taken.isEmpty
        }
        var batchSize = services.configuration.deliveryBatchSize
        if let skip = reader.skipAhead {
            if reader.readOffset >= skip.from {
                reader.readOffset = max(reader.readOffset, skip.to)
                reader.skipAhead = nil
            } else {
                batchSize = min(batchSize, Int(skip.from - reader.readOffset))
            }
        }
        guard reader.readOffset < store.maxOffset(queue: reader.queue) else { return false }
        do {
            // Reads are from memory-mapped segments and bounded by the batch size, so they stay on the loop.
            let result = try store.read(queue: reader.queue, from: reader.readOffset, maxMessages: batchSize)
            switch result.status {
            case .found:
                reader.accept(result.messages, nextOffset: result.nextOffset)
                return !reader.buffered.isEmpty || reader.readOffset < store.maxOffset(queue: reader.queue)
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

    /// The PUBLISH as this subscriber gets it, or nil when it must not get it: its own message under No
    /// Local ([MQTT-3.8.3-3]), or expired ([MQTT-3.3.2-5]).
    func publication(of stored: StoredMessage, for reader: SubscriptionReader) -> PublishPacket? {
        let message = stored.message
        if reader.options.noLocal, let origin = message.originClientIdentifier, origin == (attachedClientIdentifier ?? journalClientIdentifier) {
            return nil
        }
        guard let properties = remainingLifetime(message.properties, storedAtMillis: stored.storeTimestampMillis) else { return nil }
        return PublishPacket(
            topicName: message.topic,
            payload: message.payload,
            qos: min(message.qos, reader.grantedQoS),  // [MQTT-3.8.4-8]
            // [MQTT-3.3.1-9], [MQTT-3.3.1-12]: live deliveries carry RETAIN only with Retain As Published.
            retain: reader.options.retainAsPublished && message.retain,
            properties: withSubscriptionIdentifier(properties, reader)
        )
    }

    /// A retained message sent because of a subscription: RETAIN set ([MQTT-3.3.1-8]); nil once expired.
    private func retainedPublication(of message: RetainedMessage, for reader: SubscriptionReader) -> PublishPacket? {
        guard let properties = remainingLifetime(message.properties, storedAtMillis: message.storeTimestampMillis) else { return nil }
        return PublishPacket(
            topicName: message.topic, payload: message.payload, qos: min(message.qos, reader.grantedQoS), retain: true,
            properties: withSubscriptionIdentifier(properties, reader)
        )
    }

    /// `properties` with the Message Expiry Interval lowered by the time the message waited ([MQTT-3.3.2-6]),
    /// or nil when it has expired ([MQTT-3.3.2-5]).
    private func remainingLifetime(_ properties: MQTTProperties, storedAtMillis: Int64) -> MQTTProperties? {
        guard let expirySeconds = properties.messageExpiryInterval else { return properties }
        let waitedSeconds = max(0, (GatewayServices.wallClockMillis - storedAtMillis) / 1_000)
        guard waitedSeconds < Int64(expirySeconds) else { return nil }
        let remaining = expirySeconds - UInt32(waitedSeconds)
        return MQTTProperties(properties.map { property in
            if case .messageExpiryInterval = property { return .messageExpiryInterval(remaining) }
            return property
        })
    }

    /// `properties` plus the Subscription Identifier of `reader`'s SUBSCRIBE, if it had one ([MQTT-3.3.4-3]).
    private func withSubscriptionIdentifier(_ properties: MQTTProperties, _ reader: SubscriptionReader) -> MQTTProperties {
        guard let identifier = reader.subscriptionIdentifier else { return properties }
        return MQTTProperties(Array(properties) + [.subscriptionIdentifier(identifier)])
    }
}
