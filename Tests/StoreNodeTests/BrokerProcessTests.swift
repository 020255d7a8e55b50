import Foundation
import LMQStore
import NIOCore
import NameServer
import Remoting
import StoreNode
import Testing

@Suite("mqbroker process")
struct BrokerProcessTests {
    @Test("SYNC_FLUSH: every acknowledged append survives kill -9; the broker registers with the name server")
    func acknowledgedAppendsSurviveKill() async throws {
        let nameServerFolder = TemporaryFolder("namesrv")
        let nameServer = NameServer(
            configuration: NameServerConfiguration(listenAddress: "127.0.0.1", listenPort: 0, dataDir: nameServerFolder.path, logLevel: .error)
        )
        try await nameServer.start()
        let nameServerAddress = RemotingAddress(host: "127.0.0.1", port: try #require(nameServer.port))
        let nameServerRemoting = RemotingClient()
        let registry = RemotingNameServerClient(address: nameServerAddress, remotingClient: nameServerRemoting)

        let broker = try BrokerProcess(settings: [
            "flushDiskType": "SYNC_FLUSH", "namesrvAddr": "\(nameServerAddress)", "brokerName": "broker-test", "brokerClusterName": "TestCluster",
        ])
        do {
            try await broker.start()
            let address = RemotingAddress(host: "127.0.0.1", port: broker.port)

            // Registered as a store node under its advertised address.
            let expected = NodeInfo.store(name: "broker-test", cluster: "TestCluster", address: "\(address)")
            #expect(await Self.eventually { try await registry.listNodes(kind: .store).map(\.node).contains(expected) })

            // Acknowledged appends, from several concurrent writers, then SIGKILL mid-stream.
            let client = StoreNodeClient(address: address, logger: testLogger)
            let acknowledged = LockedBox<[(UInt64, AppendResult)]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for index in 0..<50 {
                            let id = UInt64(writer * 1_000 + index)
                            let message = LMQMessage(topic: "t/\(writer)", payload: ByteBuffer(string: "payload-\(id)"), qos: .atLeastOnce, messageId: id)
                            let result = try await client.append(message, to: ["%LMQ%t%\(writer)%", "%LMQ%t%+%"])
                            acknowledged.mutate { $0.append((id, result)) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            broker.kill(signal: SIGKILL)
            #expect(await broker.waitForExit() == 128 + SIGKILL)
            try await client.close()

            try await broker.start()
            #expect(broker.port == address.port)
            let reader = StoreNodeClient(address: address, logger: testLogger)
            #expect(acknowledged.value.count == 200)
            for (id, result) in acknowledged.value {
                for queueOffset in result.queueOffsets {
                    let page = try await reader.pull(queue: queueOffset.queue, from: queueOffset.offset, maxMessages: 1, maxBytes: 1 << 20)
                    #expect(page.messages.first?.offset == queueOffset.offset)
                    #expect(page.messages.first?.message.message.messageId == id, "\(queueOffset)")
                    #expect(page.messages.first?.message.message.payload == ByteBuffer(string: "payload-\(id)"))
                }
            }
            #expect(try await reader.maxOffsets(queues: ["%LMQ%t%+%"]) == ["%LMQ%t%+%": 200])
            try await reader.close()

            // A graceful stop unregisters it.
            broker.kill(signal: SIGTERM)
            #expect(await broker.waitForExit() == 0)
            #expect(await Self.eventually { try await !registry.listNodes(kind: .store).map(\.node).contains(expected) })
        } catch {
            Issue.record("\(error)")
        }
        await broker.cleanUp()
        await nameServerRemoting.shutdown()
        await nameServer.shutdown()
        nameServerFolder.remove()
    }

    /// Polls `condition` (errors count as false) for up to `timeout`.
    static func eventually(timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}
