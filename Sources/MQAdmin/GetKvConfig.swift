import ArgumentParser
import NameServer

struct GetKvConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "getKvConfig",
        abstract: "Print a KV config value."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("s"), .long], help: "The namespace.")
    var namespace: String

    @Option(name: [.customShort("k"), .long], help: "The key.")
    var key: String

    func run() async throws {
        let (namespace, key) = (self.namespace, self.key)
        let value = try await AdminSession(command: "getKvConfig", options: nameServers).read { client throws(NameServerError) in
            try await client.getKV(namespace: namespace, key: key)
        }
        guard let value else { throw AdminFailure("key \(key) not found in namespace \(namespace)") }
        print(value)
    }
}
