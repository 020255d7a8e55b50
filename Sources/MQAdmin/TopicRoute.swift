import ArgumentParser
import Foundation
import NameServer

struct TopicRoute: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topicRoute",
        abstract: "Print the route of a first topic as JSON: its store node addresses."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("t"), .long], help: "The first topic.")
    var topic: String

    func run() async throws {
        let topic = self.topic
        let route = try await AdminSession(command: "topicRoute", options: nameServers).read { client throws(NameServerError) in
            try await client.topicRoute(topic)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(route), as: UTF8.self))
    }
}
