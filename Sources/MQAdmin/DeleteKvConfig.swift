import ArgumentParser
import NameServer

struct DeleteKvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deleteKvConfig",
        abstract: "Delete a KV config key."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("s"), .long], help: "The namespace.")
    var namespace: String

    @Option(name: [.customShort("k"), .long], help: "The key.")
    var key: String

    func run() async throws {
        let (namespace, key) = (self.namespace, self.key)
        try await AdminSession(command: "deleteKvConfig", options: nameServers).write { client throws(NameServerError) in
            guard try await client.deleteKV(namespace: namespace, key: key) else {
                throw .invalidArgument("key \(key) not found in namespace \(namespace)")
            }
            return "deleted \(namespace)/\(key) on \(client.address)"
        }
    }
}
