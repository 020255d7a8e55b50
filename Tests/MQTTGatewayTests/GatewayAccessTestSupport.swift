import Foundation
import LMQStore
import Logging
import MQTTAuth
import MQTTCore
@testable import MQTTGateway

/// A gateway on 127.0.0.1 and a free port with the given limits and ACL rules (written to a temporary
/// `aclFile`), over a store in a fresh temporary folder.
struct AccessTestNode {
    let node: TestNode
    let aclFile: URL?

    var port: Int { node.port }
    var counters: LimitCounters { node.gateway.services.limitCounters }

    static func start(limits: GatewayLimits = GatewayLimits(), aclRules: String? = nil) async throws -> AccessTestNode {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-access-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var aclFile: URL?
        if let aclRules {
            let file = directory.appendingPathComponent("acl.conf")
            try aclRules.write(to: file, atomically: true, encoding: .utf8)
            aclFile = file
        }
        let configuration = GatewayConfiguration(
            host: "127.0.0.1",
            mqttPort: 0,
            store: LMQStore.Configuration(
                storePathRootDir: directory.appendingPathComponent("store").path, flushDiskType: .asyncFlush,
                mappedFileSizeCommitLog: 16 * 1024 * 1024, indexFileSizeBytes: 1024 * 1024
            ),
            auth: try AuthConfiguration(allowAnonymous: true, aclFilePath: aclFile?.path),
            limits: limits
        )
        var logger = Logger(label: "mqtt.gateway.access-test")
        logger.logLevel = .warning
        let gateway = try await Gateway.start(configuration: configuration, logger: logger, threads: 2)
        return AccessTestNode(node: TestNode(gateway: gateway, storeDirectory: directory), aclFile: aclFile)
    }

    func stop() async {
        await node.stop()
    }
}
