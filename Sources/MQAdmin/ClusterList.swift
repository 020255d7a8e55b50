import ArgumentParser
import NameServer

struct ClusterList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterList",
        abstract: "List the live store nodes by cluster, with the age of their last heartbeat."
    )

    @OptionGroup var nameServers: NameServerOptions

    func run() async throws {
        let nodes = try await AdminSession(command: "clusterList", options: nameServers).read { client throws(NameServerError) in
            try await client.listNodes(kind: .store)
        }
        let rows = nodes.map { status in
            [status.node.cluster, status.node.name, status.node.address, heartbeatAge(status), uptime(status)]
        }
        printTable(header: ["#Cluster", "#Store Name", "#Address", "#Last Heartbeat", "#Registered"], rows: rows)
    }
}
