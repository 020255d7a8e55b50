import Foundation
import LMQStore
import MQTTCore

extension GatewayServices {
    /// The queues a PUBLISH to `topic` is dispatched to: `<firstTopic>/p2p/<clientId>` goes to that client's
    /// peer-to-peer queue alone (DESIGN.md, "Peer-to-peer"); any other topic to its own queue and the queue
    /// of every wildcard filter held by a session that matches it.
    func dispatchQueues(for topic: TopicName) -> [String] {
        if let recipient = LMQNaming.p2pRecipientClientId(of: topic) {
            return [LMQNaming.p2pLMQName(clientId: String(recipient))]
        }
        return router.queues(for: topic)
    }

    /// Appends `message` to its queues and, with RETAIN, keeps (or, with an empty payload, deletes) it as
    /// the topic's retained message ([MQTT-3.3.1-5], [MQTT-3.3.1-6]), before returning.
    func publish(_ message: LMQMessage) async throws -> AppendResult {
        let queues = dispatchQueues(for: try TopicName(message.topic))
        let result = try await store.append(message, to: queues)
        if message.retain {
            try await metadata.setRetained(RetainedMessage(
                topic: message.topic, payload: message.payload, qos: message.qos, properties: message.properties,
                storeTimestampMillis: result.storeTimestampMillis
            ))
        }
        return result
    }

    /// Publishes the will of `clientIdentifier` and removes it from the session record, if there is one
    /// ([MQTT-3.1.2-10]). Failures are logged: there is no one to tell.
    func publishWill(_ will: StoredWill, clientIdentifier: String, sessionStored: Bool) async {
        // The Will Delay Interval is the server's; it does not go to subscribers.
        let properties = MQTTProperties(will.properties.filter { $0.identifier != .willDelayInterval })
        let message = LMQMessage(
            topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: properties,
            originClientIdentifier: clientIdentifier
        )
        do {
            _ = try await publish(message)
            logger.info("published the will of \(clientIdentifier) to \(will.topic)")
        } catch {
            logger.error("publishing the will of \(clientIdentifier) failed: \(error)")
        }
        guard sessionStored else { return }
        do {
            try await metadata.setWill(clientIdentifier: clientIdentifier, nil)
        } catch LMQMetadataStoreError.sessionNotFound {
            // The session ended meanwhile, and its will with it.
        } catch {
            logger.error("removing the published will of \(clientIdentifier) failed: \(error)")
        }
    }

    /// Publishes the will now, or after its Will Delay Interval capped by the session's expiry (§3.1.3.2.2),
    /// counted from `disconnectedAtMillis`.
    func publishWill(
        _ will: StoredWill, clientIdentifier: String, sessionStored: Bool, sessionExpiryIntervalSeconds: UInt32, disconnectedAtMillis: Int64
    ) {
        let delaySeconds = min(will.delayIntervalSeconds, sessionExpiryIntervalSeconds)
        let delayMillis = disconnectedAtMillis + Int64(delaySeconds) * 1_000 - Self.wallClockMillis
        if delaySeconds == 0 || delayMillis <= 0 {
            maintenance.spawn { [self] in await publishWill(will, clientIdentifier: clientIdentifier, sessionStored: sessionStored) }
            return
        }
        wills.schedule(clientIdentifier: clientIdentifier, delayMillis: delayMillis) { [self] in
            maintenance.spawn { [self] in await publishWill(will, clientIdentifier: clientIdentifier, sessionStored: sessionStored) }
        }
    }

    /// Milliseconds since 1970: what the session records and retained messages use.
    static var wallClockMillis: Int64 { Int64(Date().timeIntervalSince1970 * 1_000) }

    /// The name this node writes into the session records it holds.
    /// How session records name this gateway: its registered address and this start's instance, as the store
    /// node's liveness check matches them against the registry (a restart on the same address is a new name).
    var nodeName: String {
        let address = boundNodeName.withLockedValue { $0 } ?? "\(configuration.host):\(configuration.mqttPort)"
        return "\(address)#\(instanceIdentifier)"
    }
}

extension GatewayServices {
    /// Ends a stored session: its wildcard filters stop being dispatch targets, and its record and consume
    /// offsets are deleted.
    func endSession(_ record: SessionRecord) async throws {
        for subscription in record.subscriptions {
            if let filter = try? TopicFilter(subscription.topicFilter) {
                router.removeDispatch(filter, clientIdentifier: record.clientIdentifier)
            }
        }
        try await endSession(clientIdentifier: record.clientIdentifier)
    }

    /// Deletes the record and consume offsets of a session, in one transaction.
    func endSession(clientIdentifier: String) async throws {
        try await metadata.deleteSessionAndOffsets(clientIdentifier: clientIdentifier)
    }
}
