import ArgumentParser
import NameServer

struct GatewayList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatewayList",
        abstract: "List the live gateway nodes, with the age of their last heartbeat."
    )

    @OptionGroup var nameServers: NameServerOptions

    func run() async throws {
        let nodes = try await AdminSession(command: "gatewayList", options: nameServers).read { client throws(NameServerError) in
            try await client.listNodes(kind: .gateway)
        }
        let rows = nodes.map { status in
            [status.node.address, status.node.name, status.node.cluster, heartbeatAge(status), uptime(status)]
        }
        printTable(header: ["#Address", "#Name", "#Cluster", "#Last Heartbeat", "#Registered"], rows: rows)
    }
}
