import ArgumentParser
import NameServer

struct DeleteTopic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deleteTopic",
        abstract: "Delete a first topic and remove it from LMQ/ALL_FIRST_TOPICS."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("t"), .long], help: "The first topic.")
    var topic: String

    func run() async throws {
        let topic = self.topic
        try await AdminSession(command: "deleteTopic", options: nameServers).write { client throws(NameServerError) in
            try await client.deleteTopic(topic)
            return "deleted topic \(topic) on \(client.address)"
        }
    }
}
