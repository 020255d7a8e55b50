import ArgumentParser
import Foundation
import Logging
import NodeSupport
import Remoting
import StoreNode

/// `mqbroker [-c CONF_DIR]`: runs a store node in the foreground until SIGTERM or SIGINT.
/// `bin/mqbroker` adds start/stop/status, the pid file and the log file around it.
@main
struct MQBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqbroker",
        abstract: "Run an LMQ store node: the commit log, the light message queues and their metadata.",
        usage: "mqbroker [-c CONF_DIR]",
        discussion: """
            Runs in the foreground and logs to standard error; stop it with SIGTERM or SIGINT (Ctrl-C). \
            Settings come from CONF_DIR/broker.conf; NAMESRV_ADDR overrides its namesrvAddr. To run it in the \
            background with a pid file and a log file, use bin/mqbroker start|stop|status|run.
            """,
        subcommands: [Serve.self, Probe.self, PrintConfig.self],
        defaultSubcommand: Serve.self
    )
}

/// `-c CONF_DIR`, shared by the subcommands.
struct ConfigurationOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("conf")], help: "Configuration folder holding broker.conf (default: $MQTT_CONF_DIR, else ./conf).")
    var confDir: String?

    var directory: String {
        confDir ?? ProcessInfo.processInfo.environment["MQTT_CONF_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "conf"
    }

    func load() throws -> (configuration: BrokerConfiguration, warnings: [String]) {
        do {
            return try BrokerConfiguration.load(directory: directory)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension MQBrokerCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run the store node in the foreground (the default)."
        )

        @OptionGroup var options: ConfigurationOptions

        @Option(name: .customLong("log-level"), help: "Overrides logLevel of broker.conf (trace, debug, info, ...).")
        var logLevel: String?

        func run() async throws {
            var (configuration, warnings) = try options.load()
            if let logLevel {
                guard let level = Logger.Level(rawValue: logLevel.lowercased()) else { throw ValidationError("unknown log level \(logLevel)") }
                configuration.logLevel = level
            }
            let level = configuration.logLevel
            NodeProcessSupport.bootstrapLogging(level: level)
            let logger = Logger(label: "broker")
            for warning in warnings { logger.warning("\(warning)") }
            if configuration.nameServerAddresses.isEmpty {
                logger.warning("namesrvAddr is empty: this store node registers with no name server, so no gateway will find it")
            }
            let started = try await ForegroundService.run(logger: logger) {
                let server = StoreNodeServer(configuration: configuration, logger: logger)
                try await server.start()
                return server
            } stop: { server in
                await server.shutdown()
            }
            guard started else { throw ExitCode.failure }
        }
    }

    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit 0 if the store node of CONF_DIR answers a request, 1 if not (used by bin/mqbroker).",
            shouldDisplay: false
        )

        @OptionGroup var options: ConfigurationOptions

        @Option(name: .customLong("timeout-ms"), help: "How long to wait for the answer.")
        var timeoutMilliseconds: Int = 1_000

        func run() async throws {
            let (configuration, _) = try options.load()
            let host = NodeProcessSupport.localHost(reaching: configuration.listenAddress)
            let client = StoreNodeClient(
                address: RemotingAddress(host: host, port: configuration.listenPort),
                configuration: .init(connectTimeout: .milliseconds(timeoutMilliseconds), requestTimeout: .milliseconds(timeoutMilliseconds)),
                logger: Logger(label: "mqbroker.probe", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            let result: Result<Int, any Error>
            do {
                result = .success(try await client.queueCount())
            } catch {
                result = .failure(error)
            }
            try? await client.close()
            if case .failure(let error) = result {
                FileHandle.standardError.write(Data("mqbroker probe: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct PrintConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Print one resolved setting of CONF_DIR/broker.conf (used by bin/mqbroker).",
            shouldDisplay: false
        )

        @OptionGroup var options: ConfigurationOptions

        @Argument(help: "storePathRootDir, logDir, listenAddress or listenPort.")
        var key: String

        func run() throws {
            let (configuration, _) = try options.load()
            switch key {
            case "storePathRootDir": print(Self.absolute(configuration.store.storePathRootDir))
            case "logDir": print(Self.absolute(configuration.logDirectoryPath))
            case "listenAddress": print(configuration.listenAddress)
            case "listenPort": print(configuration.listenPort)
            default: throw ValidationError("unknown setting \(key); expected storePathRootDir, logDir, listenAddress or listenPort")
            }
        }

        /// A relative path resolved against the working directory, as the store resolves it.
        static func absolute(_ path: String) -> String {
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            return (absolute as NSString).standardizingPath
        }
    }
}
