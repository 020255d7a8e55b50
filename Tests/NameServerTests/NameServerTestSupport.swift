import Foundation
import NameServer
import Remoting

/// A fresh folder under the system's temporary directory, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init(_ name: String = "namesrv") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

extension NameServerConfiguration {
    /// Loopback, a free port, quiet logs.
    static func testing(dataDir: String, nodeExpiry: Duration = .seconds(30), limits: NameServerLimits = NameServerLimits()) -> Self {
        NameServerConfiguration(
            listenAddress: "127.0.0.1", listenPort: 0, dataDir: dataDir, nodeExpiry: nodeExpiry, logLevel: .error, limits: limits
        )
    }
}

extension NameServer {
    /// Starts a name server for a test.
    static func started(_ configuration: NameServerConfiguration) async throws -> NameServer {
        let server = NameServer(configuration: configuration)
        try await server.start()
        return server
    }

    var address: RemotingAddress { RemotingAddress(host: "127.0.0.1", port: port!) }
}
