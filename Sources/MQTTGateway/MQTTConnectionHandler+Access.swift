import LMQStore
import MQTTAuth
import MQTTCore

/// Authorization (the ACL of `aclFile`) and the per-session limits of `connect.conf`.
extension MQTTConnectionHandler {
    /// Compiles the client's ACL rules for the attached session and drops a will the client may not
    /// publish: it is neither stored with the session nor published when the connection ends.
    func authorizedAttachment(_ attachment: ServerConnectionStateMachine.SessionAttachment) -> ServerConnectionStateMachine.SessionAttachment {
        guard let manager = services.authorizationManager else { return attachment }
        let authorizer = manager.authorizer(clientIdentifier: attachment.clientIdentifier, identity: access.identity ?? .anonymous)
        access.authorizer = authorizer
        guard let will = attachment.will, case .deny(let rule) = authorizer.authorize(.publish, topic: will.topicName) else { return attachment }
        services.limitCounters.add(.willDenied)
        access.willDenied = true
        logger.info("not authorized: will dropped", metadata: [
            "client": "\(attachment.clientIdentifier)", "topic": "\(will.topicName)", "rule": "\(rule)",
        ])
        var withoutWill = attachment
        withoutWill.will = nil
        return withoutWill
    }

    /// `nil` when the client may publish to `topic`, else the rule that denied it (logged and counted here).
    func publishDenial(topic: String) -> String? {
        guard let authorizer = access.authorizer, case .deny(let rule) = authorizer.authorize(.publish, topic: topic) else { return nil }
        services.limitCounters.add(.publishDenied)
        logger.info("not authorized: PUBLISH refused", metadata: [
            "client": "\(attachedClientIdentifier ?? "-")", "topic": "\(topic)", "rule": "\(rule)",
        ])
        return rule
    }

    /// The SUBACK failure code for `filter` when the ACL or `maxSubscriptionsPerClient` refuses it, else nil.
    /// The machine turns a v5 code into 0x80 for 3.1.1 clients.
    func subscriptionRefusal(_ filter: TopicFilter) -> MQTTReasonCode? {
        if let authorizer = access.authorizer, case .deny(let rule) = authorizer.authorize(.subscribe, topic: filter.string) {
            services.limitCounters.add(.subscribeDenied)
            logger.info("not authorized: SUBSCRIBE refused", metadata: [
                "client": "\(attachedClientIdentifier ?? "-")", "topic": "\(filter.string)", "rule": "\(rule)",
            ])
            return .notAuthorized
        }
        let maximum = services.configuration.limits.maximumSubscriptionsPerClient
        // The peer-to-peer queue is the session's own, not a subscription. Replacing a subscription is no new one.
        let held = subscriptions.count - (subscriptions[SubscriptionReader.peerToPeerKey] == nil ? 0 : 1)
        if maximum > 0, subscriptions[filter.string] == nil, held >= maximum {
            services.limitCounters.add(.subscriptionQuotaExceeded)
            logger.info("SUBSCRIBE refused: maxSubscriptionsPerClient", metadata: [
                "topic": "\(filter.string)", "maxSubscriptionsPerClient": "\(maximum)",
            ])
            return .quotaExceeded
        }
        return nil
    }

    /// Where a resumed session reads `queue` from, and what it skips.
    struct ResumePoint {
        /// The first offset to read; nil: the end of the queue (no stored offset).
        var start: Int64?
        /// With `dropNewest`: reading jumps from the first offset to the second (the skipped newest).
        var skipAhead: (from: Int64, to: Int64)?
    }

    /// Where a resumed session reads `queue`, whose stored offset is `storedOffset`: a backlog longer than
    /// `maxQueuedMessagesPerSession` loses its oldest or its newest messages (`queuedMessagesOverflow`),
    /// logged and counted. The queue is a shared log, so nothing is deleted: this session just does not
    /// read them.
    func resumePoint(queue: String, storedOffset: Int64?) -> ResumePoint {
        let limits = services.configuration.limits
        let maximum = Int64(limits.maximumQueuedMessagesPerSession)
        guard let storedOffset, maximum > 0 else { return ResumePoint(start: storedOffset) }
        let end = services.store.maxOffset(queue: queue)
        guard end - storedOffset > maximum else { return ResumePoint(start: storedOffset) }
        let skipped = end - maximum - storedOffset
        services.limitCounters.add(.backlogMessageDropped, Int(skipped))
        logger.warning("backlog over maxQueuedMessagesPerSession: messages skipped", metadata: [
            "queue": "\(queue)", "skipped": "\(skipped)", "maxQueuedMessagesPerSession": "\(maximum)",
            "queuedMessagesOverflow": "\(limits.queuedMessagesOverflow.rawValue)",
        ])
        switch limits.queuedMessagesOverflow {
        case .dropOldest:
            return ResumePoint(start: end - maximum)
        case .dropNewest:
            return ResumePoint(start: storedOffset, skipAhead: (from: storedOffset + maximum, to: end))
        }
    }
}
