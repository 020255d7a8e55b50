import NodeSupport
import ArgumentParser
import Foundation
import Logging
import NameServer
import Remoting

/// `mqnamesrv [-c CONF_DIR]`: runs a name server in the foreground until SIGTERM or SIGINT.
/// `bin/mqnamesrv` adds start/stop/status, the pid file and the log file around it.
@main
struct MQNameServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqnamesrv",
        abstract: "Run the name server: KV metadata, topic routes and the node registry.",
        usage: "mqnamesrv [-c CONF_DIR]",
        discussion: """
            Runs in the foreground and logs to standard error; stop it with SIGTERM or SIGINT (Ctrl-C). \
            Settings come from CONF_DIR/namesrv.conf. To run it in the background with a pid file and a \
            log file, use bin/mqnamesrv start|stop|status|run.
            """,
        subcommands: [Serve.self, Probe.self, PrintConfig.self, Bench.self],
        defaultSubcommand: Serve.self
    )
}

/// `-c CONF_DIR`, shared by the subcommands.
struct ConfigurationOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("conf")], help: "Configuration folder holding namesrv.conf (default: $MQTT_CONF_DIR, else ./conf).")
    var confDir: String?

    var directory: String {
        confDir ?? ProcessInfo.processInfo.environment["MQTT_CONF_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "conf"
    }

    func load() throws -> (configuration: NameServerConfiguration, warnings: [String]) {
        do {
            return try NameServerConfiguration.load(directory: directory)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// The address a local client uses to reach a server listening on `listenAddress`.
func localAddress(of configuration: NameServerConfiguration, port: Int) -> RemotingAddress {
    RemotingAddress(host: NodeProcessSupport.localHost(reaching: configuration.listenAddress), port: port)
}

extension MQNameServerCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run the name server in the foreground (the default)."
        )

        @OptionGroup var options: ConfigurationOptions

        func run() async throws {
            let (configuration, warnings) = try options.load()
            let logLevel = configuration.logLevel
            NodeProcessSupport.bootstrapLogging(level: logLevel)
            let logger = Logger(label: "namesrv")
            for warning in warnings { logger.warning("\(warning)") }

            let started = try await ForegroundService.run(logger: logger) {
                let server = NameServer(configuration: configuration, logger: logger)
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
            abstract: "Exit 0 if the name server of CONF_DIR answers a request, 1 if not (used by bin/mqnamesrv).",
            shouldDisplay: false
        )

        @OptionGroup var options: ConfigurationOptions

        @Option(name: .customLong("timeout-ms"), help: "How long to wait for the answer.")
        var timeoutMilliseconds: Int = 1_000

        func run() async throws {
            let (configuration, _) = try options.load()
            let remoting = RemotingClient(
                configuration: .init(connectTimeout: .milliseconds(timeoutMilliseconds), requestTimeout: .milliseconds(timeoutMilliseconds))
            )
            let client = RemotingNameServerClient(address: localAddress(of: configuration, port: configuration.listenPort), remotingClient: remoting)
            let result: Result<[String], NameServerError>
            do {
                result = .success(try await client.topicList())
            } catch {
                result = .failure(error)
            }
            await remoting.shutdown()
            if case .failure(let error) = result {
                FileHandle.standardError.write(Data("mqnamesrv probe: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct PrintConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Print one resolved setting of CONF_DIR/namesrv.conf (used by bin/mqnamesrv).",
            shouldDisplay: false
        )

        @OptionGroup var options: ConfigurationOptions

        @Argument(help: "dataDir, logDir, listenAddress or listenPort.")
        var key: String

        func run() throws {
            let (configuration, _) = try options.load()
            switch key {
            case "dataDir": print(configuration.dataDirectoryPath)
            case "logDir": print(configuration.logDirectoryPath)
            case "listenAddress": print(configuration.listenAddress)
            case "listenPort": print(configuration.listenPort)
            default: throw ValidationError("unknown setting \(key); expected dataDir, logDir, listenAddress or listenPort")
            }
        }
    }
}
