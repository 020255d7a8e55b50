import Foundation
import MQTTAuth
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import LMQStore
import Logging
import NIOCore

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A gateway on 127.0.0.1 and a free port, over a store in a fresh temporary folder.
struct TestNode {
    let gateway: Gateway
    let storeDirectory: URL

    var port: Int { gateway.port }

    /// - Parameter directory: the store folder of an earlier node, to start it again on the same store.
    static func start(auth: AuthConfiguration? = nil, directory existing: URL? = nil, flushDiskType: FlushDiskType = .asyncFlush) async throws -> TestNode {
        let directory = existing ?? FileManager.default.temporaryDirectory.appendingPathComponent("gateway-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configuration = GatewayConfiguration(
            host: "127.0.0.1",
            mqttPort: 0,
            store: LMQStore.Configuration(
                storePathRootDir: directory.path, flushDiskType: flushDiskType, mappedFileSizeCommitLog: 16 * 1024 * 1024,
                indexFileSizeBytes: 1024 * 1024
            ),
            auth: try auth ?? AuthConfiguration(allowAnonymous: true)
        )
        var logger = Logger(label: "mqtt.gateway.test")
        logger.logLevel = .warning
        let gateway = try await Gateway.start(configuration: configuration, logger: logger, threads: 2)
        return TestNode(gateway: gateway, storeDirectory: directory)
    }

    func stop() async {
        await gateway.shutdown()
        try? FileManager.default.removeItem(at: storeDirectory)
    }

    /// Stops the gateway and starts a new one on the same store (a graceful restart).
    func restart() async throws -> TestNode {
        await gateway.shutdown()
        return try await TestNode.start(directory: storeDirectory, flushDiskType: gateway.configuration.store.flushDiskType)
    }

    /// A connected client of this node.
    func client(_ clientIdentifier: String, _ version: MQTTProtocolVersion) async throws -> MQTTClient {
        let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: port, clientIdentifier: clientIdentifier, protocolVersion: version))
        _ = try await client.connect()
        return client
    }

    /// A client of this node, not connected yet, configured by `configure`.
    func makeClient(_ clientIdentifier: String, _ version: MQTTProtocolVersion, _ configure: (inout MQTTClient.Configuration) -> Void = { _ in }) -> MQTTClient {
        var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: port, clientIdentifier: clientIdentifier, protocolVersion: version)
        configure(&configuration)
        return MQTTClient(configuration: configuration)
    }
}

/// Reads a client's `messages` in a task of its own and keeps them, so tests can wait for a number of
/// messages with a timeout without cancelling the reader (cancelling it would end the stream).
///
/// `@unchecked Sendable`: `messages` is guarded by `lock`.
final class MessageCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [MQTTMessage] = []

    init(_ client: MQTTClient) {
        let stream = client.messages
        Task { [weak self] in
            for await message in stream {
                guard let self else { return }
                self.lock.withLock { self.messages.append(message) }
            }
        }
    }

    var received: [MQTTMessage] {
        lock.withLock { messages }
    }

    /// Waits until at least `count` messages arrived, then returns all received so far.
    func wait(for count: Int, timeout: Duration = .seconds(20)) async throws -> [MQTTMessage] {
        try await waitUntil("\(count) messages (have \(received.count))", timeout: timeout) { self.received.count >= count }
        return received
    }
}

/// Polls `condition` until it holds; throws after `timeout`.
func waitUntil(_ what: @autoclosure () -> String, timeout: Duration = .seconds(20), _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(await condition()) {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out after \(timeout) waiting for \(what())") }
        try await Task.sleep(for: .milliseconds(10))
    }
}
