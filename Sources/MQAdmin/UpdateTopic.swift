import ArgumentParser
import NameServer

struct UpdateTopic: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "updateTopic",
        abstract: "Create a first topic, or add store nodes to its route; it is listed in LMQ/ALL_FIRST_TOPICS.",
        discussion: "With -b the route gets that store node; with -c every store node registered in the cluster; with neither the topic is only declared (a standalone node stores it itself)."
    )

    @OptionGroup var nameServers: NameServerOptions

    @Option(name: [.customShort("t"), .long], help: "The first topic (one topic level, e.g. sensors).")
    var topic: String

    @Option(name: [.customShort("c"), .long], help: "Route the topic to every live store node of this cluster.")
    var cluster: String?

    @Option(name: [.customShort("b"), .customLong("store-addr")], help: "Route the topic to this store node (host:port).")
    var storeAddress: String?

    func validate() throws {
        if cluster != nil && storeAddress != nil { throw ValidationError("give -c CLUSTER or -b STORE_ADDR, not both") }
    }

    func run() async throws {
        let target: TopicTarget
        if let cluster {
            target = .cluster(cluster)
        } else if let storeAddress {
            target = .storeAddress(storeAddress)
        } else {
            target = .none
        }
        let topic = self.topic
        try await AdminSession(command: "updateTopic", options: nameServers).write { client throws(NameServerError) in
            let route = try await client.updateTopic(topic, target: target)
            let stores = route.storeAddresses.isEmpty ? "none" : route.storeAddresses.joined(separator: ",")
            return "updated topic \(topic) on \(client.address): stores \(stores)"
        }
    }
}
