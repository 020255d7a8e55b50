import Foundation
import LMQStore
import Logging
import MQTTAuth
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NameServer
import Testing

@Suite("Gateway keeps the name server's metadata current", .timeLimit(.minutes(1)))
struct ClusterMetadataPublisherTests {
    @Test("wildcard subscriptions are listed under their first topic, each filter once however many subscribe")
    func wildcardFiltersListedOnce() async throws {
        let node = try await StandaloneTestNode.start()
        // An operator's entry is kept.
        try await node.nameServer.putKV(namespace: "LMQ", key: "a", value: "a/x/#")
        var clients: [MQTTClient] = []
        for index in 0..<3 {
            let client = try await connectedClient(port: node.port, "wild-\(index)", index == 0 ? .v3_1_1 : .v5)
            #expect(try await client.subscribe(to: "a/+/c", qos: .atLeastOnce) == .atLeastOnce)
            #expect(try await client.subscribe(to: "a/#", qos: .atMostOnce) == .atMostOnce)
            #expect(try await client.subscribe(to: "a/b/c", qos: .atMostOnce) == .atMostOnce)
            clients.append(client)
        }
        try await waitUntil("LMQ/a to list both filters") { (try? await node.wildcardFilters(of: "a").count) == 3 }
        // Settled: later subscribers did not add them again.
        try await Task.sleep(for: .milliseconds(200))
        let filters = try await node.wildcardFilters(of: "a")
        #expect(filters.sorted() == ["a/#", "a/+/c", "a/x/#"])
        #expect(Set(filters).count == filters.count)
        // The exact filter is not a wildcard filter; its first topic was created by the SUBSCRIBE.
        #expect(try await node.nameServer.topicList() == ["a"])

        // A subscriber that leaves does not remove its filter: persistent sessions may still hold it.
        try await clients[0].unsubscribe(from: "a/+/c")
        for client in clients {
            try await client.disconnect()
            await client.shutdown()
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await node.wildcardFilters(of: "a").sorted() == ["a/#", "a/+/c", "a/x/#"])
        await node.stop()
    }

    @Test("a PUBLISH to a first topic the name server does not know creates it, with no store route")
    func publishCreatesFirstTopic() async throws {
        let node = try await StandaloneTestNode.start()
        let client = try await connectedClient(port: node.port, "creator", .v5)
        try await client.publish(to: "fresh/1/temp", payload: "21.5", qos: .atLeastOnce)
        try await client.publish(to: "fresh/2/temp", payload: "22.0", qos: .atMostOnce)
        try await client.publish(to: "other", payload: "x", qos: .atLeastOnce)
        try await waitUntil("fresh and other in topicList") { (try? await node.nameServer.topicList()) == ["fresh", "other"] }
        #expect(try await node.nameServer.topicRoute("fresh") == TopicRoute(topic: "fresh", storeAddresses: []))
        let allFirstTopics = try await node.nameServer.getKV(namespace: "LMQ", key: LMQMetadataKey.allFirstTopics)
        #expect(allFirstTopics.map { Set(LMQMetadataKey.items(of: $0)) } == ["fresh", "other"])
        try await client.disconnect()
        await client.shutdown()
        await node.stop()
    }

    @Test("the gateway registers as a gateway node with its MQTT address, and stop() unregisters it")
    func nodeRegistration() async throws {
        let node = try await StandaloneTestNode.start()
        let address = "127.0.0.1:\(node.port)"
        try await waitUntil("the gateway to register") {
            (try? await node.nameServer.listNodes(kind: .gateway).map(\.node.address)) == [address]
        }
        let status = try #require(try await node.nameServer.listNodes(kind: .gateway).first)
        #expect(status.node.kind == .gateway)
        #expect(try await node.nameServer.listNodes(kind: .store).isEmpty)
        // Heartbeats (every 200 ms here) keep it fresh: after 1.5 s without any, its age would be over 1.5 s.
        try await Task.sleep(for: .milliseconds(1_500))
        let refreshed = try #require(try await node.nameServer.listNodes(kind: .gateway).first)
        #expect(refreshed.lastHeartbeatAgeMilliseconds < 1_500)

        await node.node.metadataPublisher?.stop()
        #expect(try await node.nameServer.listNodes(kind: .gateway).isEmpty)
        await node.stop()
    }

    @Test("an unreachable name server fails no PUBLISH or SUBSCRIBE; its writes are made once it answers")
    func failuresAreRetried() async throws {
        let nameServer = try await TestNameServer.start()
        let flaky = InstrumentedNameServerClient(nameServer.client, failing: true)
        var logger = Logger(label: "mqtt.gateway.test")
        logger.logLevel = .critical
        let publisher = ClusterMetadataPublisher(
            nameServers: [flaky], configuration: .init(heartbeatInterval: .milliseconds(100), retryInterval: .milliseconds(50)), logger: logger
        )
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-test-\(UUID().uuidString)")
        let gateway = try await Gateway.start(
            configuration: GatewayConfiguration(
                host: "127.0.0.1", mqttPort: 0,
                store: LMQStore.Configuration(storePathRootDir: directory.path, mappedFileSizeCommitLog: 16 * 1024 * 1024, indexFileSizeBytes: 1024 * 1024),
                auth: try AuthConfiguration(allowAnonymous: true)
            ),
            logger: logger, threads: 2, metadataPublisher: publisher
        )
        publisher.start(node: .gateway(address: "127.0.0.1:\(gateway.port)"))

        let subscriber = try await connectedClient(port: gateway.port, "retry-sub", .v5)
        let messages = MessageCollector(subscriber)
        #expect(try await subscriber.subscribe(to: "r/+", qos: .atLeastOnce) == .atLeastOnce)
        let sender = try await connectedClient(port: gateway.port, "retry-pub", .v3_1_1)
        try await sender.publish(to: "r/1", payload: "while down", qos: .atLeastOnce)
        #expect(try await messages.wait(for: 1).map(\.payloadString) == ["while down"])
        // Several retry intervals have passed; nothing got through.
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await nameServer.client.topicList().isEmpty)
        #expect(try await nameServer.client.getKV(namespace: "LMQ", key: "r") == nil)
        #expect(try await nameServer.client.listNodes(kind: .gateway).isEmpty)

        flaky.failing = false
        try await waitUntil("the queued writes after recovery") {
            let filters = try? await nameServer.client.getKV(namespace: "LMQ", key: "r")
            let topics = try? await nameServer.client.topicList()
            let gateways = try? await nameServer.client.listNodes(kind: .gateway)
            return filters == "r/+" && topics == ["r"] && gateways?.count == 1
        }
        #expect(flaky.count("updateTopic") == 1)
        #expect(flaky.count("putKV") == 1)

        for client in [subscriber, sender] {
            try await client.disconnect()
            await client.shutdown()
        }
        await gateway.shutdown()
        await publisher.stop()
        #expect(try await nameServer.client.listNodes(kind: .gateway).isEmpty)
        await nameServer.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    @Test("one name-server write per new first topic and per new wildcard filter, not one per message")
    func oneWritePerNewEntry() async throws {
        let nameServer = try await TestNameServer.start()
        let counting = InstrumentedNameServerClient(nameServer.client)
        var logger = Logger(label: "mqtt.gateway.test")
        logger.logLevel = .warning
        let publisher = ClusterMetadataPublisher(nameServers: [counting], configuration: .init(retryInterval: .milliseconds(50)), logger: logger)
        for index in 0..<200 {
            publisher.topicUsed(try TopicName("hot/\(index % 7)/x"))
            publisher.subscribed(try TopicFilter(index.isMultiple(of: 2) ? "hot/+/x" : "hot/#"))
        }
        // Queued before start() is kept.
        publisher.start(node: .gateway(address: "127.0.0.1:1883"))
        try await waitUntil("hot and both filters") {
            let filters = try? await nameServer.client.getKV(namespace: "LMQ", key: "hot")
            let topics = try? await nameServer.client.topicList()
            return filters == "hot/+/x,hot/#" && topics == ["hot"]
        }
        for index in 0..<100 {
            publisher.topicUsed(try TopicName("hot/\(index)"))
            publisher.subscribed(try TopicFilter("hot/+/x"))
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(counting.count("updateTopic") == 1)
        #expect(counting.count("topicRoute") == 1)
        #expect(counting.count("putKV") == 2)
        #expect(counting.count("getKV") == 2)
        await publisher.stop()
        await nameServer.stop()
    }

    @Test("filters that belong to no first topic, or would corrupt the list, are not written")
    func unlistableFilters() async throws {
        let nameServer = try await TestNameServer.start()
        var logger = Logger(label: "mqtt.gateway.test")
        logger.logLevel = .critical
        let publisher = ClusterMetadataPublisher(
            nameServers: [nameServer.client], configuration: .init(autoCreateFirstTopic: false, retryInterval: .milliseconds(50)), logger: logger
        )
        publisher.start(node: .gateway(address: "127.0.0.1:1883"))
        for filter in ["+/status", "#", "/+", "ALL_FIRST_TOPICS/#", "LMQ_CONNECT_NODES/+", "$share/g/shared/+", "plain/topic"] {
            publisher.subscribed(try TopicFilter(filter))
        }
        publisher.topicUsed(try TopicName("published/1"))
        // Work is written in order: once this is there, everything before it was handled.
        publisher.subscribed(try TopicFilter("last/#"))
        try await waitUntil("last/# to be listed") { (try? await nameServer.client.getKV(namespace: "LMQ", key: "last")) == "last/#" }
        // A shared subscription lists its filter proper (every group reads the same queue).
        #expect(try await nameServer.client.listKV(namespace: "LMQ") == ["last": "last/#", "shared": "shared/+"])
        // autoCreateFirstTopic=false: neither the PUBLISH nor the SUBSCRIBEs created a topic.
        #expect(try await nameServer.client.topicList().isEmpty)
        await publisher.stop()
        await nameServer.stop()
    }

    @Test("the reasons a filter cannot be listed")
    func reasonNotListable() {
        #expect(ClusterMetadataPublisher.reasonNotListable("a/+", firstTopic: "a", spansFirstTopics: false) == nil)
        #expect(ClusterMetadataPublisher.reasonNotListable("+/a", firstTopic: "+", spansFirstTopics: true) != nil)
        #expect(ClusterMetadataPublisher.reasonNotListable("/+", firstTopic: "", spansFirstTopics: false) != nil)
        #expect(ClusterMetadataPublisher.reasonNotListable("a,b/+", firstTopic: "a,b", spansFirstTopics: false) != nil)
        #expect(ClusterMetadataPublisher.reasonNotListable("a/+/ ", firstTopic: "a", spansFirstTopics: false) != nil)
        #expect(ClusterMetadataPublisher.reasonNotListable("ALL_FIRST_TOPICS/+", firstTopic: "ALL_FIRST_TOPICS", spansFirstTopics: false) != nil)
    }
}

@Suite("service.conf: cluster settings")
struct ClusterConfigurationTests {
    @Test("defaults: standalone, auto-created topics, name server on 0.0.0.0:9876")
    func defaults() throws {
        let configuration = try ClusterConfiguration.parse("# nothing\nusername=\n")
        #expect(configuration == ClusterConfiguration())
        #expect(configuration.isStandalone)
        #expect(configuration.autoCreateFirstTopic)
        #expect(configuration.nameServerListenPort == 9876)
        #expect(configuration.localNameServerAddress(port: 9876) == "127.0.0.1:9876")
        #expect(configuration.storeListenAddress == "127.0.0.1")
        #expect(configuration.storeListenPort == 10911)
    }

    @Test("every key is read")
    func keys() throws {
        let configuration = try ClusterConfiguration.parse("""
            NAMESRV_ADDR=10.0.0.1:9876; 10.0.0.2:9876
            autoCreateFirstTopic=false
            namesrvListenAddress=127.0.0.1
            namesrvListenPort=0
            storeListenAddress=0.0.0.0
            storeListenPort=0
            """)
        #expect(configuration.nameServerAddresses == ["10.0.0.1:9876", "10.0.0.2:9876"])
        #expect(!configuration.isStandalone)
        #expect(!configuration.autoCreateFirstTopic)
        #expect(configuration.nameServerListenPort == 0)
        #expect(configuration.localNameServerAddress(port: 4000) == "127.0.0.1:4000")
        #expect(configuration.storeListenAddress == "0.0.0.0")
        #expect(configuration.storeListenPort == 0)
        #expect(try ClusterConfiguration.parse("storeListenPort=-1").storeListenPort == nil)
    }

    @Test("bad values name their key", arguments: [
        ("namesrvListenPort=70000", "namesrvListenPort"), ("namesrvListenPort=x", "namesrvListenPort"),
        ("autoCreateFirstTopic=yes", "autoCreateFirstTopic"), ("NAMESRV_ADDR=10.0.0.1", "NAMESRV_ADDR"),
        ("NAMESRV_ADDR=10.0.0.1:0", "NAMESRV_ADDR"), ("storeListenPort=-2", "storeListenPort"), ("storeListenPort=65536", "storeListenPort"),
    ])
    func badValues(text: String, key: String) {
        #expect {
            _ = try ClusterConfiguration.parse(text)
        } throws: { error in
            (error as? GatewayConfiguration.LoadError)?.message.contains(key) == true
        }
    }
}
