import ArgumentParser
import NameServer

struct TopicList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topicList",
        abstract: "Print every first topic, one per line."
    )

    @OptionGroup var nameServers: NameServerOptions

    func run() async throws {
        let topics = try await AdminSession(command: "topicList", options: nameServers).read { client throws(NameServerError) in
            try await client.topicList()
        }
        for topic in topics { print(topic) }
    }
}
