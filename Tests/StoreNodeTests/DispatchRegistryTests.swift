import LMQStore
import MQTTCore
import StoreNode
import Testing

/// The store node's dispatch registry: which wildcard filters an append is dispatched to, and which
/// registrations survive a restart.
@Suite("DispatchRegistry")
struct DispatchRegistryTests {
    @Test("an append goes to the given queues plus each matching registered wildcard filter's queue, once")
    func dispatchQueues() {
        let registry = DispatchRegistry()
        registry.update(added: [
            DispatchRegistration(filter: "a/+", clientIdentifier: "c1"),
            DispatchRegistration(filter: "a/+", clientIdentifier: "c2"),
            DispatchRegistration(filter: "a/#", clientIdentifier: "c1"),
            DispatchRegistration(filter: "a/b", clientIdentifier: "c3"),  // no wildcard: ignored
            DispatchRegistration(filter: "b/+", clientIdentifier: "c1"),
        ], removed: [])
        #expect(Set(registry.dispatchQueues(topic: "a/b", adding: ["%LMQ%a%b%"])) == ["%LMQ%a%b%", "%LMQ%a%+%", "%LMQ%a%#%"])
        #expect(registry.dispatchQueues(topic: "a/b", adding: ["%LMQ%a%b%"]).count == 3)
        registry.update(added: [], removed: [DispatchRegistration(filter: "a/+", clientIdentifier: "c1")])
        // c2 still holds a/+.
        #expect(registry.dispatchQueues(topic: "a/b", adding: []).contains("%LMQ%a%+%"))
        registry.update(added: [], removed: [DispatchRegistration(filter: "a/+", clientIdentifier: "c2")])
        #expect(registry.dispatchQueues(topic: "a/b", adding: []) == ["%LMQ%a%#%"])
    }

    @Test("kept registrations nobody renews are dropped after the start, except consumer groups'; renewed ones stay")
    func provisionalRegistrations() {
        let registry = DispatchRegistry()
        registry.load([], kept: [
            DispatchRegistration(filter: "s/+", clientIdentifier: "gone"),
            DispatchRegistration(filter: "s/#", clientIdentifier: "renewed"),
            .consumerGroup("backend", filter: "t/+"),
        ])
        registry.update(added: [DispatchRegistration(filter: "s/#", clientIdentifier: "renewed")], removed: [])
        #expect(registry.dropProvisional() == 1)
        #expect(registry.dispatchQueues(topic: "s/1", adding: []) == ["%LMQ%s%#%"])
        #expect(registry.dispatchQueues(topic: "t/1", adding: []) == ["%LMQ%t%+%"])
        #expect(DispatchRegistration.consumerGroup("backend", filter: "t/+").isConsumerGroup)
        #expect(!DispatchRegistration(filter: "t/+", clientIdentifier: "device").isConsumerGroup)
    }

    @Test("registrations are kept in the metadata file, in order")
    func persisted() async throws {
        let folder = TemporaryFolder("dispatch")
        defer { folder.remove() }
        let metadata = try await LMQMetadataStore.open(storePathRootDir: folder.path)
        let registry = DispatchRegistry(metadata: metadata)
        registry.update(added: [.consumerGroup("g", filter: "x/#"), DispatchRegistration(filter: "y/+", clientIdentifier: "c")], removed: [])
        registry.update(added: [], removed: [DispatchRegistration(filter: "y/+", clientIdentifier: "c")])
        await registry.finishWrites()
        let kept = try await metadata.dispatchRegistrations()
        #expect(kept.map(\.topicFilter) == ["x/#"])
        #expect(kept.map(\.clientIdentifier) == ["%GROUP%g"])
        try await metadata.close()
    }
}
