import LMQStore
import MQTTCore
import StoreNode

/// Dispatch of a standalone node's store as its store listener serves it to server applications
/// (`LMQClient`): an append goes where a PUBLISH of the same topic goes — the peer-to-peer queue alone,
/// or the topic's queue and the queue of every wildcard filter in the gateway's ``SubscriptionRouter``.
///
/// Server consumer groups register their wildcard filters here (`UPDATE_DISPATCH`): they join the router,
/// so MQTT publishes reach them too, and are kept in the metadata file (as a store node keeps them), so a
/// group keeps receiving across restarts while its members are away.
final class StandaloneDispatcher: MessageDispatching {
    private let router: SubscriptionRouter
    /// Writes the registrations to the metadata file, in order.
    private let kept: DispatchRegistry
    private let metadata: LMQMetadataStore

    init(router: SubscriptionRouter, metadata: LMQMetadataStore) {
        self.router = router
        self.metadata = metadata
        self.kept = DispatchRegistry(metadata: metadata)
    }

    /// Adds the consumer groups' registrations kept in the metadata file to the router: before the node
    /// accepts its first PUBLISH.
    func loadConsumerGroups() async throws {
        let registrations = try await metadata.dispatchRegistrations()
            .map { DispatchRegistration(filter: $0.topicFilter, clientIdentifier: $0.clientIdentifier) }
            .filter(\.isConsumerGroup)
        kept.load([], kept: registrations)
        router.addDispatch(registrations.compactMap { registration in
            (try? TopicFilter(registration.filter)).map { (filter: $0, clientIdentifier: registration.clientIdentifier) }
        })
    }

    func update(added: [DispatchRegistration], removed: [DispatchRegistration]) {
        for registration in added {
            guard let filter = try? TopicFilter(registration.filter) else { continue }
            router.addDispatch(filter, clientIdentifier: registration.clientIdentifier)
        }
        for registration in removed {
            guard let filter = try? TopicFilter(registration.filter) else { continue }
            router.removeDispatch(filter, clientIdentifier: registration.clientIdentifier)
        }
        kept.update(added: added, removed: removed)
    }

    func dispatchQueues(topic: String, adding queues: [String]) -> [String] {
        guard let name = try? TopicName(topic), LMQNaming.p2pRecipientClientId(of: name) == nil else { return queues }
        var result = queues
        for queue in router.queues(for: name) where !result.contains(queue) { result.append(queue) }
        return result
    }

    /// Returns once the registrations made so far are in the metadata file.
    func finishWrites() async {
        await kept.finishWrites()
    }
}
