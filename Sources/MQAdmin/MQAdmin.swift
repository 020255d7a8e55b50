import ArgumentParser

/// `mqadmin`: the operator's tool for the name servers, and for poking the store with a message sent or
/// consumed as a server application would. Command names follow RocketMQ's mqadmin and are
/// matched without regard to case (`updateKvConfig` = `updatekvconfig`).
struct MQAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqadmin",
        abstract: "Administer the name servers of an MQTT gateway cluster; send and consume messages on its store.",
        discussion: """
            Name servers are given with -n "host:port;host:port" (default: $NAMESRV_ADDR, else 127.0.0.1:9876). \
            Writes go to every name server listed, and fail if any of them fails; reads use the first that answers. \
            sendMessage and consumeMessage find the store node through the name servers, as gateways do. \
            Command names are case-insensitive.

            Exit status: 0 success, 1 failure (the reason is printed on one line), 64 bad usage.
            """,
        subcommands: [
            UpdateTopic.self, DeleteTopic.self, TopicList.self, TopicRoute.self,
            UpdateKvConfig.self, GetKvConfig.self, DeleteKvConfig.self, GetKvList.self,
            ClusterList.self, GatewayList.self, SignPassword.self, SendMessage.self, ConsumeMessage.self,
        ]
    )

    /// The subcommand names as spelled in help, for case-insensitive matching.
    static var commandNames: [String] {
        configuration.subcommands.compactMap { $0.configuration.commandName }
    }
}
