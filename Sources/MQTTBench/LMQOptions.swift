import ArgumentParser
import LMQClient
import Logging

/// Where `lmq-pub` and `lmq-sub` find the store: the name servers (as a server application does), or
/// a store node given outright.
struct LMQOptions: ParsableArguments {
    @Option(name: [.customShort("n"), .customLong("namesrv")], help: "Name servers, host:port[;host:port] (default: $NAMESRV_ADDR, else 127.0.0.1:9876; a standalone node's is namesrvListenPort).")
    var nameServers: String?

    @Option(name: .customLong("store-node"), help: "The primary store node, host:port (default: the first registered with the name servers).")
    var storeNodeAddress: String?

    @Option(name: .customLong("lmq-log-level"), help: "Log level of the LMQ client library: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func validate() throws {
        if let nameServers, LMQClientConfiguration.parseAddresses(nameServers).isEmpty {
            throw ValidationError("--namesrv names no address")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--lmq-log-level: '\(logLevel)' is not a log level") }
    }

    var clientConfiguration: LMQClientConfiguration {
        LMQClientConfiguration(
            nameServerAddresses: nameServers.map(LMQClientConfiguration.parseAddresses) ?? LMQClientConfiguration.environmentNameServers(),
            storeNodeAddress: storeNodeAddress
        )
    }

    /// `host:port;host:port`, as the summary names it.
    var nameServerDescription: String { clientConfiguration.nameServerAddresses.joined(separator: ";") }

    func logger(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        return logger
    }
}
