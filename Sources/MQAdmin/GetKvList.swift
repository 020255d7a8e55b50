import ArgumentParser
import NameServer

struct GetKvList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "getKvList",
        abstract: "Print every key of a namespace as key=value lines, sorted by key."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("s"), .long], help: "The namespace.")
    var namespace: String

    func run() async throws {
        let namespace = self.namespace
        let table = try await AdminSession(command: "getKvList", options: nameServers).read { client throws(NameServerError) in
            try await client.listKV(namespace: namespace)
        }
        guard !table.isEmpty else { throw AdminFailure("namespace \(namespace) not found (it has no keys)") }
        for key in table.keys.sorted() { print("\(key)=\(table[key]!)") }
    }
}
