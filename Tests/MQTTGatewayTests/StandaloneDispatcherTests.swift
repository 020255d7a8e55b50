import Foundation
import LMQStore
import MQTTCore
import StoreNode
import Testing

@testable import MQTTGateway

/// How a standalone node dispatches the appends of server applications: like a PUBLISH, and with the
/// consumer groups' filters kept across restarts.
@Suite("StandaloneDispatcher")
struct StandaloneDispatcherTests {
    @Test("an append goes where a PUBLISH goes: the topic's queue and the router's wildcard filters; peer-to-peer alone")
    func dispatch() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dispatcher-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let metadata = try await LMQMetadataStore.open(storePathRootDir: directory)
        let router = SubscriptionRouter()
        router.addDispatch(try TopicFilter("cmd/+"), clientIdentifier: "dashboard")
        let dispatcher = StandaloneDispatcher(router: router, metadata: metadata)
        #expect(Set(dispatcher.dispatchQueues(topic: "cmd/device-7", adding: ["%LMQ%cmd%device-7%"])) == ["%LMQ%cmd%device-7%", "%LMQ%cmd%+%"])
        let p2p = LMQNaming.p2pLMQName(clientId: "device-7")
        #expect(dispatcher.dispatchQueues(topic: "cmd/p2p/device-7", adding: [p2p]) == [p2p])

        // A group's registration joins the router (MQTT publishes reach it too) and is kept.
        dispatcher.update(added: [.consumerGroup("backend", filter: "sensors/#")], removed: [])
        #expect(router.queues(for: try TopicName("sensors/1/t")).contains("%LMQ%sensors%#%"))
        await dispatcher.finishWrites()
        try await metadata.close()

        let reopened = try await LMQMetadataStore.open(storePathRootDir: directory)
        let restartedRouter = SubscriptionRouter()
        let restarted = StandaloneDispatcher(router: restartedRouter, metadata: reopened)
        try await restarted.loadConsumerGroups()
        #expect(restartedRouter.queues(for: try TopicName("sensors/1/t")).contains("%LMQ%sensors%#%"))
        restarted.update(added: [], removed: [.consumerGroup("backend", filter: "sensors/#")])
        #expect(restartedRouter.queues(for: try TopicName("sensors/1/t")) == ["%LMQ%sensors%1%t%"])
        await restarted.finishWrites()
        try await reopened.close()
    }
}
