import LMQStore
import MQTTCore
import NIOCore
import Remoting
import StoreNode
import Testing

/// What the store node does for a cluster of gateways — dispatch, takeover, shared subscriptions — with
/// several clients of one in-process node standing in for gateways.
@Suite("Store node: dispatch, takeover and shared groups across clients")
struct StoreNodeClusterTests {
    static func message(_ id: UInt64, topic: String) -> LMQMessage {
        LMQMessage(topic: topic, payload: ByteBuffer(string: "m\(id)"), qos: .atLeastOnce, messageId: id)
    }

    static func client(_ node: StoreNodeFixture) -> StoreNodeClient {
        StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: node.port), logger: testLogger)
    }

    @Test("a filter registered by one client is dispatched to by the appends of another, until it is unregistered")
    func dispatchAcrossClients() async throws {
        let node = try await StoreNodeFixture.start()
        let other = Self.client(node)
        let registration = DispatchRegistration(filter: "a/+/c", clientIdentifier: "sub-1")
        try await node.client.updateDispatch(added: [registration], removed: []).get()
        let first = try await other.append(Self.message(1, topic: "a/b/c"), to: ["%LMQ%a%b%c%"])
        #expect(Set(first.queueOffsets.map(\.queue)) == ["%LMQ%a%b%c%", "%LMQ%a%+%c%"])
        // A topic the filter does not match, and a shared registration of the same filter (no second queue).
        let unmatched = try await other.append(Self.message(2, topic: "a/b/d"), to: ["%LMQ%a%b%d%"])
        #expect(unmatched.queueOffsets.map(\.queue) == ["%LMQ%a%b%d%"])
        try await other.updateDispatch(added: [DispatchRegistration(filter: "$share/g/a/+/c", clientIdentifier: "m-1")], removed: []).get()
        let shared = try await other.append(Self.message(3, topic: "a/x/c"), to: ["%LMQ%a%x%c%"])
        #expect(shared.queueOffsets.map(\.queue) == ["%LMQ%a%x%c%", "%LMQ%a%+%c%"])
        // Every holder must go before the filter stops being dispatched to.
        try await node.client.updateDispatch(added: [], removed: [registration]).get()
        #expect(try await other.append(Self.message(4, topic: "a/y/c"), to: ["%LMQ%a%y%c%"]).queueOffsets.count == 2)
        try await other.updateDispatch(added: [], removed: [DispatchRegistration(filter: "$share/g/a/+/c", clientIdentifier: "m-1")]).get()
        #expect(try await other.append(Self.message(5, topic: "a/z/c"), to: ["%LMQ%a%z%c%"]).queueOffsets.map(\.queue) == ["%LMQ%a%z%c%"])
        try? await other.close()
        await node.stop()
    }

    @Test("stored sessions' wildcard filters are dispatched to after a restart, with no client registering them")
    func dispatchFromStoredSessions() async throws {
        let folder = TemporaryFolder()
        let port = try freePortBelowEphemeralRange()
        let configuration = BrokerConfiguration.testing(storePath: folder.path, port: port)
        let server = StoreNodeServer(configuration: configuration, logger: testLogger)
        _ = try await server.start()
        let client = StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: port), logger: testLogger)
        try await client.putSession(SessionRecord(
            clientIdentifier: "offline", protocolVersion: .v5,
            subscriptions: [StoredSubscription(Subscription(topicFilter: "s/#", maximumQoS: .atLeastOnce))],
            sessionExpiryIntervalSeconds: 600
        ))
        await server.shutdown()
        let restarted = StoreNodeServer(configuration: configuration, logger: testLogger)
        _ = try await restarted.start()
        // The client's first request may meet the connection to the node that stopped; it reconnects.
        for _ in 0..<100 {
            if (try? await client.queueCount()) != nil { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let result = try await client.append(Self.message(1, topic: "s/1"), to: ["%LMQ%s%1%"])
        #expect(Set(result.queueOffsets.map(\.queue)) == ["%LMQ%s%1%", "%LMQ%s%#%"])
        try? await client.close()
        await restarted.shutdown()
        folder.remove()
    }

    @Test("a registration is dispatched by after a restart before any gateway renews it; unrenewed ones are dropped later")
    func registrationsSurviveARestart() async throws {
        let folder = TemporaryFolder()
        let port = try freePortBelowEphemeralRange()
        let configuration = BrokerConfiguration.testing(storePath: folder.path, port: port)
        let server = StoreNodeServer(configuration: configuration, logger: testLogger)
        _ = try await server.start()
        let gateway = StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: port), logger: testLogger)
        try await gateway.updateDispatch(added: [DispatchRegistration(filter: "live/+", clientIdentifier: "c1")], removed: []).get()
        try await gateway.updateDispatch(
            added: [DispatchRegistration(filter: "gone/+", clientIdentifier: "c2")], removed: []
        ).get()
        try await gateway.updateDispatch(added: [], removed: [DispatchRegistration(filter: "gone/+", clientIdentifier: "c2")]).get()
        try? await gateway.close()
        await server.shutdown()

        let restarted = StoreNodeServer(configuration: configuration, logger: testLogger, dispatchProvisionalPeriod: .seconds(2))
        _ = try await restarted.start()
        let publisher = StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: port), logger: testLogger)
        let kept = try await publisher.append(Self.message(1, topic: "live/1"), to: ["%LMQ%live%1%"])
        #expect(Set(kept.queueOffsets.map(\.queue)) == ["%LMQ%live%1%", "%LMQ%live%+%"], "kept across the restart")
        let removed = try await publisher.append(Self.message(2, topic: "gone/1"), to: ["%LMQ%gone%1%"])
        #expect(removed.queueOffsets.map(\.queue) == ["%LMQ%gone%1%"], "an unregistration is kept too")
        // Nobody renews live/+ within the period: it is dropped.
        let deadline = ContinuousClock.now + .seconds(10)
        var dispatched = 2
        while dispatched == 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            dispatched = try await publisher.append(Self.message(3, topic: "live/2"), to: ["%LMQ%live%2%"]).queueOffsets.count
        }
        #expect(dispatched == 1, "a kept registration nobody renewed is dropped after the period")
        try? await publisher.close()
        await restarted.shutdown()
        folder.remove()
    }

    @Test("a claim held by another client waits until the holder is told and gives the client up")
    func takeover() async throws {
        let node = try await StoreNodeFixture.start()
        let holder = node.client
        let claimer = Self.client(node)
        let told = LockedBox<[(String, UInt64)]>([])
        holder.setTakeoverHandler { clientIdentifier, claimID in told.mutate { $0.append((clientIdentifier, claimID)) } }
        let first = try await holder.claimSession("device-1")
        // The holder claiming again (a reconnect on the same gateway) is granted at once.
        _ = try await holder.claimSession("device-1")

        let claim = Task { try await claimer.claimSession("device-1") }
        try await waitFor("the holder is told") { told.value.count == 1 }
        #expect(told.value.first?.0 == "device-1")
        // The old connection's late release changes nothing: the claim still waits for the holder.
        holder.releaseSession("device-1", token: first)
        try await Task.sleep(for: .milliseconds(200))
        holder.takeoverDone("device-1", claimID: told.value[0].1)
        let token = try await claim.value
        #expect(token > first)

        // A holder whose connection closes is gone: the next claim is granted without waiting for it.
        let third = Self.client(node)
        let pending = Task { try await third.claimSession("device-1") }
        try await Task.sleep(for: .milliseconds(200))
        try? await claimer.close()
        _ = try await pending.value
        try? await third.close()
        await node.stop()
    }

    @Test("a shared group hands each message to one client; what a closed client held goes to the others")
    func sharedGroup() async throws {
        let node = try await StoreNodeFixture.start()
        let queue = "%LMQ%jobs%#%"
        for id in 0..<10 as Range<UInt64> {
            _ = try await node.client.append(Self.message(id, topic: "jobs/\(id)"), to: [queue])
        }
        let gatewayA = Self.client(node)
        let gatewayB = Self.client(node)
        let returned = LockedBox<[String]>([])
        gatewayB.setSharedReturnedHandler { key in returned.mutate { $0.append(key) } }
        let key = "$share/g/jobs/#"
        let takenByA = try await gatewayA.takeShared(key: key, queue: queue, startOffset: 0, maximum: 4)
        let takenByB = try await gatewayB.takeShared(key: key, queue: queue, startOffset: 99, maximum: 4)
        #expect(takenByA.map(\.offset) == [0, 1, 2, 3])
        #expect(takenByB.map(\.offset) == [4, 5, 6, 7], "the group started where its first taker said")
        gatewayA.finishShared(key: key, offsets: [0, 1])
        // A request after it on the same connection: the finish (applied in arrival order) is in place.
        _ = try await gatewayA.queueCount()
        // A goes away holding 2 and 3: B hears of it and gets them before the rest.
        try? await gatewayA.close()
        try await waitFor("gateway B is told of the handed-back messages") { returned.value == [key] }
        let next = try await gatewayB.takeShared(key: key, queue: queue, startOffset: 0, maximum: 10)
        #expect(next.map(\.offset) == [2, 3, 8, 9])
        // Given back by B: taken again by the next taker.
        gatewayB.giveBackShared(key: key, offsets: [8, 9])
        _ = try await gatewayB.queueCount()
        let again = try await node.client.takeShared(key: key, queue: queue, startOffset: 0, maximum: 10)
        #expect(again.map(\.offset) == [8, 9])
        try? await gatewayB.close()
        await node.stop()
    }

    private func waitFor(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
