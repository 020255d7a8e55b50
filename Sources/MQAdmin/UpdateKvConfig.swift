import ArgumentParser
import NameServer

struct UpdateKvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "updateKvConfig",
        abstract: "Set a KV config value, e.g. -s LMQ -k LMQ_CONNECT_NODES -v 10.0.0.1,10.0.0.2."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("s"), .long], help: "The namespace (LMQ for the gateway's metadata).")
    var namespace: String

    @Option(name: [.customShort("k"), .long], help: "The key.")
    var key: String

    @Option(name: [.customShort("v"), .long], help: "The value (comma-separated lists for LMQ keys).")
    var value: String

    func run() async throws {
        let (namespace, key, value) = (self.namespace, self.key, self.value)
        try await AdminSession(command: "updateKvConfig", options: nameServers).write { client throws(NameServerError) in
            try await client.putKV(namespace: namespace, key: key, value: value)
            return "updated \(namespace)/\(key) on \(client.address)"
        }
    }
}
