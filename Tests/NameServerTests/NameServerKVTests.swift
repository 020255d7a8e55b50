import Foundation
import NameServer
import Remoting
import Testing

/// KV and topic semantics, checked through both clients (in process and over the network), and
/// persistence across restarts.
@Suite("Name server KV and topics")
struct NameServerKVTests {
    /// Runs `body` once with the in-process client and once with the network client, each on a fresh server.
    func withBothClients(limits: NameServerLimits = NameServerLimits(), _ body: (any NameServerClient, String) async throws -> Void) async throws {
        for kind in ["in-process", "network"] {
            let folder = TemporaryFolder()
            defer { folder.remove() }
            let server = try await NameServer.started(.testing(dataDir: folder.path, limits: limits))
            let remoting = RemotingClient()
            let client: any NameServerClient =
                kind == "in-process" ? server.client : RemotingNameServerClient(address: server.address, remotingClient: remoting)
            do {
                try await body(client, kind)
            } catch {
                Issue.record("\(kind): \(error)")
            }
            await remoting.shutdown()
            await server.shutdown()
        }
    }

    @Test("put, get, overwrite, list and delete; absent keys and namespaces read as nil and empty")
    func kvSemantics() async throws {
        try await withBothClients { client, kind in
            #expect(try await client.getKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES") == nil, "\(kind)")
            #expect(try await client.listKV(namespace: "LMQ").isEmpty, "\(kind)")
            try await client.putKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES", value: "10.0.0.1,10.0.0.2")
            try await client.putKV(namespace: "LMQ", key: "sensors", value: "sensors/+,sensors/#")
            try await client.putKV(namespace: "OTHER", key: "empty", value: "")
            #expect(try await client.getKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES") == "10.0.0.1,10.0.0.2", "\(kind)")
            try await client.putKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES", value: "10.0.0.3:7001")
            #expect(try await client.getKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES") == "10.0.0.3:7001", "\(kind)")
            #expect(try await client.getKV(namespace: "OTHER", key: "empty") == "", "\(kind)")
            #expect(try await client.listKV(namespace: "LMQ") == ["LMQ_CONNECT_NODES": "10.0.0.3:7001", "sensors": "sensors/+,sensors/#"], "\(kind)")
            #expect(try await client.deleteKV(namespace: "LMQ", key: "sensors"), "\(kind)")
            #expect(try await !client.deleteKV(namespace: "LMQ", key: "sensors"), "\(kind)")
            #expect(try await client.getKV(namespace: "LMQ", key: "sensors") == nil, "\(kind)")
            #expect(try await client.deleteKV(namespace: "OTHER", key: "empty"), "\(kind)")
            #expect(try await client.listKV(namespace: "OTHER").isEmpty, "\(kind)")
            let unicode = "值,ü,\u{1F600}\nline two"
            try await client.putKV(namespace: "ns", key: "ключ", value: unicode)
            #expect(try await client.getKV(namespace: "ns", key: "ключ") == unicode, "\(kind)")
        }
    }

    @Test("bad names and oversized values are refused with a reason, and nothing is stored")
    func validation() async throws {
        try await withBothClients(limits: NameServerLimits(maxValueBytes: 100, maxKeyCount: 3)) { client, kind in
            await #expect(throws: NameServerError.invalidArgument("value of 101 bytes exceeds the limit of 100 bytes"), "\(kind)") {
                try await client.putKV(namespace: "LMQ", key: "k", value: String(repeating: "x", count: 101))
            }
            await #expect(throws: NameServerError.invalidArgument("key must not be empty"), "\(kind)") {
                try await client.putKV(namespace: "LMQ", key: "", value: "v")
            }
            await #expect(throws: NameServerError.invalidArgument("namespace must not be empty"), "\(kind)") {
                try await client.putKV(namespace: "", key: "k", value: "v")
            }
            await #expect(throws: NameServerError.self, "\(kind)") {
                try await client.putKV(namespace: "LMQ", key: "a\nb", value: "v")
            }
            #expect(try await client.listKV(namespace: "LMQ").isEmpty, "\(kind)")
            try await client.putKV(namespace: "LMQ", key: "k", value: String(repeating: "x", count: 100))
            try await client.putKV(namespace: "A", key: "1", value: "")
            try await client.putKV(namespace: "A", key: "2", value: "")
            await #expect(throws: NameServerError.invalidArgument("the name server holds its maximum of 3 keys"), "\(kind)") {
                try await client.putKV(namespace: "A", key: "3", value: "")
            }
            // Overwriting an existing key is not a new key.
            try await client.putKV(namespace: "A", key: "2", value: "again")
        }
    }

    @Test("updateTopic lists the topic in LMQ/ALL_FIRST_TOPICS, keeping hand-written entries; deleteTopic removes it")
    func topics() async throws {
        try await withBothClients { client, kind in
            try await client.putKV(namespace: "LMQ", key: "ALL_FIRST_TOPICS", value: "legacy")
            var route = try await client.updateTopic("sensors", target: .storeAddress("10.0.0.1:10911"))
            #expect(route == TopicRoute(topic: "sensors", storeAddresses: ["10.0.0.1:10911"]), "\(kind)")
            route = try await client.updateTopic("sensors", target: .storeAddress("10.0.0.2:10911"))
            #expect(route.storeAddresses == ["10.0.0.1:10911", "10.0.0.2:10911"], "\(kind)")
            try await client.updateTopic("alarms", target: .none)
            #expect(try await client.getKV(namespace: "LMQ", key: "ALL_FIRST_TOPICS") == "legacy,sensors,alarms", "\(kind)")
            #expect(try await client.topicList() == ["alarms", "sensors"], "\(kind)")
            #expect(try await client.topicRoute("alarms") == TopicRoute(topic: "alarms", storeAddresses: []), "\(kind)")

            try await client.deleteTopic("sensors")
            #expect(try await client.getKV(namespace: "LMQ", key: "ALL_FIRST_TOPICS") == "legacy,alarms", "\(kind)")
            #expect(try await client.topicList() == ["alarms"], "\(kind)")
            await #expect(throws: NameServerError.topicNotFound("sensors"), "\(kind)") { try await client.topicRoute("sensors") }
            await #expect(throws: NameServerError.topicNotFound("sensors"), "\(kind)") { try await client.deleteTopic("sensors") }
            // A topic only in the hand-written list can be deleted too; the key goes with its last entry.
            try await client.deleteTopic("legacy")
            try await client.deleteTopic("alarms")
            #expect(try await client.getKV(namespace: "LMQ", key: "ALL_FIRST_TOPICS") == nil, "\(kind)")

            for bad in ["a/b", "a+", "#", "a,b", "a b", ""] {
                await #expect(throws: NameServerError.self, "\(kind): topic \(bad)") { try await client.updateTopic(bad, target: .none) }
            }
            await #expect(throws: NameServerError.invalidArgument("store address \"nowhere\" is not host:port"), "\(kind)") {
                try await client.updateTopic("t", target: .storeAddress("nowhere"))
            }
            await #expect(throws: NameServerError.clusterNotFound("c1"), "\(kind)") { try await client.updateTopic("t", target: .cluster("c1")) }
            #expect(try await client.topicList().isEmpty, "\(kind)")
        }
    }

    @Test("everything written survives a restart on the same data folder")
    func persistence() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        var server = try await NameServer.started(.testing(dataDir: folder.path))
        try await server.client.putKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES", value: "10.0.0.1")
        try await server.client.putKV(namespace: "X", key: "gone", value: "soon")
        try await server.client.deleteKV(namespace: "X", key: "gone")
        try await server.client.updateTopic("sensors", target: .storeAddress("10.0.0.1:10911"))
        try await server.client.updateTopic("sensors", target: .storeAddress("10.0.0.2:10911"))
        try await server.client.updateTopic("alarms", target: .none)
        try await server.client.deleteTopic("alarms")
        await server.shutdown()

        server = try await NameServer.started(.testing(dataDir: folder.path))
        #expect(try await server.client.listKV(namespace: "LMQ") == ["LMQ_CONNECT_NODES": "10.0.0.1", "ALL_FIRST_TOPICS": "sensors"])
        #expect(try await server.client.listKV(namespace: "X").isEmpty)
        #expect(try await server.client.topicList() == ["sensors"])
        #expect(try await server.client.topicRoute("sensors").storeAddresses == ["10.0.0.1:10911", "10.0.0.2:10911"])
        await server.shutdown()
    }

    @Test("a second name server on the same data folder is refused")
    func dataFolderLock() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let first = try await NameServer.started(.testing(dataDir: folder.path))
        let second = NameServer(configuration: .testing(dataDir: folder.path))
        await #expect {
            try await second.start()
        } throws: { error in
            "\(error)".contains("another name server is using")
        }
        await first.shutdown()
        // Released on shutdown.
        let third = try await NameServer.started(.testing(dataDir: folder.path))
        await third.shutdown()
    }

    @Test("a database of another application is refused")
    func foreignDatabase() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: folder.path + "/namesrv.db"))
        let server = NameServer(configuration: .testing(dataDir: folder.path))
        await #expect(throws: NameServerError.self) { try await server.start() }
    }

    @Test("namesrv.conf: keys, defaults, ~ expansion, unknown keys warned, bad values refused with the line")
    func configuration() throws {
        let (configuration, warnings) = try NameServerConfiguration.parse(
            """
            # comment
            listenPort = 19876
            listenAddress=127.0.0.1
            dataDir=~/ns-data
            nodeExpirySeconds=1.5
            logLevel=WARNING
            maxValueSizeBytes=1024
            colour=blue
            """
        )
        #expect(configuration.listenPort == 19876)
        #expect(configuration.listenAddress == "127.0.0.1")
        #expect(configuration.dataDirectoryPath == NameServerConfiguration.expandingTilde("~/ns-data"))
        #expect(!configuration.dataDirectoryPath.hasPrefix("~"))
        #expect(configuration.logDirectoryPath == configuration.dataDirectoryPath + "/logs")
        #expect(configuration.nodeExpiry == .milliseconds(1_500))
        #expect(configuration.logLevel == .warning)
        #expect(configuration.limits.maxValueBytes == 1_024)
        #expect(warnings == ["namesrv.conf: unknown key colour ignored"])
        #expect(try NameServerConfiguration.parse("").configuration == NameServerConfiguration())

        #expect(throws: NameServerConfiguration.LoadError(message: "namesrv.conf line 2: listenPort=70000 is invalid: expected a port 0...65535")) {
            try NameServerConfiguration.parse("# x\nlistenPort=70000")
        }
        #expect(throws: NameServerConfiguration.LoadError.self) { try NameServerConfiguration.parse("nodeExpirySeconds=0") }
        #expect(throws: NameServerConfiguration.LoadError.self) { try NameServerConfiguration.parse("logLevel=loud") }
        #expect(throws: NameServerConfiguration.LoadError(message: "namesrv.conf: line 1: expected key=value, found \"justtext\"")) {
            try NameServerConfiguration.parse("justtext")
        }
    }

    @Test("the shipped conf/namesrv.conf loads without warnings")
    func shippedConfiguration() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let (configuration, warnings) = try NameServerConfiguration.load(directory: root.appendingPathComponent("conf").path)
        #expect(warnings.isEmpty)
        #expect(configuration.listenPort == 9876)
    }
}
