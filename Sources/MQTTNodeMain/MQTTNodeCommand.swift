import NodeSupport
import ArgumentParser
import Foundation
import Logging
import MQTTGateway
import Metrics
import Prometheus

/// `mqtt-node [-c CONF_DIR]`: runs a standalone MQTT node in the foreground until SIGTERM or SIGINT.
/// `bin/mqtt.sh` adds start/stop/status, the pid file and the log file around it.
@main
struct MQTTNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt-node",
        abstract: "Run an MQTT node: the MQTT 3.1.1 / 5.0 gateway on the LMQ store.",
        usage: "mqtt-node [-c CONF_DIR]",
        discussion: """
            Runs in the foreground and logs to standard error; stop it with SIGTERM or SIGINT (Ctrl-C). \
            Settings come from CONF_DIR/connect.conf, service.conf and broker.conf. With NAMESRV_ADDR \
            empty in service.conf the node is standalone and also runs the name server, on \
            namesrvListenPort (9876), so mqadmin works against it. To run it in the background with a \
            pid file and a log file, use bin/mqtt.sh start|stop|status|run.
            """,
        subcommands: [Serve.self, Probe.self, PrintConfig.self],
        defaultSubcommand: Serve.self
    )
}

/// `-c CONF_DIR`, shared by the subcommands.
struct ConfigurationOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("conf")], help: "Configuration folder (default: $MQTT_CONF_DIR, else ./conf).")
    var confDir: String?

    var directory: String {
        confDir ?? ProcessInfo.processInfo.environment["MQTT_CONF_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "conf"
    }

    func load() throws -> GatewayConfiguration {
        do {
            return try GatewayConfiguration.load(directory: directory)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func loadCluster() throws -> ClusterConfiguration {
        do {
            return try ClusterConfiguration.load(directory: directory)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension MQTTNodeCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run the node in the foreground (the default)."
        )

        @OptionGroup var options: ConfigurationOptions

        @Option(
            name: .customLong("log-level"),
            help: "trace, debug, info, notice, warning, error or critical (default: logLevel in service.conf, else info)."
        )
        var logLevel: String?

        func run() async throws {
            let configuration = try options.load()
            let cluster = try options.loadCluster()
            let metricsConfiguration: MetricsConfiguration
            do {
                metricsConfiguration = try MetricsConfiguration.load(directory: options.directory)
            } catch {
                throw ValidationError(error.description)
            }
            let level: Logger.Level
            if let logLevel {
                guard let parsed = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level: \(logLevel)") }
                level = parsed
            } else {
                level = metricsConfiguration.logLevel ?? .info
            }
            // One registry for the process: the gateway's collectors, and whatever libraries report through
            // swift-metrics, on the same /metrics.
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            NodeProcessSupport.bootstrapLogging(level: level)
            let logger = Logger(label: "mqtt.node")
            // Every connection is a file descriptor.
            if let openFiles = OpenFileLimit.raiseToHardLimit() {
                logger.info("open-file limit \(openFiles)")
            }
            let started = try await ForegroundService.run(logger: logger) {
                try await MQTTNode.start(
                    configuration: configuration, cluster: cluster, logger: logger, metrics: metricsConfiguration,
                    gatewayMetrics: GatewayMetrics(registry: registry)
                )
            } stop: { node in
                await node.shutdown()
            }
            guard started else { throw ExitCode.failure }
        }
    }

    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit 0 if an MQTT node answers on the mqttPort of CONF_DIR, 1 if not (used by bin/mqtt.sh).",
            shouldDisplay: false
        )

        @OptionGroup var options: ConfigurationOptions

        @Option(name: .customLong("timeout-ms"), help: "How long to wait for the CONNACK.")
        var timeoutMilliseconds: Int64 = 1_000

        func run() async throws {
            let configuration = try options.load()
            let host = NodeProcessSupport.localHost(reaching: configuration.host)
            guard await GatewayProbe.answers(host: host, port: configuration.mqttPort, timeout: .milliseconds(timeoutMilliseconds)) else {
                throw ExitCode.failure
            }
        }
    }

    struct PrintConfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Print one resolved setting: mqttPort, storePathRootDir or namesrvAddress (used by bin/mqtt.sh).",
            shouldDisplay: false
        )

        @OptionGroup var options: ConfigurationOptions

        @Argument(help: "mqttPort, storePathRootDir or namesrvAddress (the in-process name server's local address; empty in cluster mode)")
        var key: String

        func run() throws {
            let configuration = try options.load()
            switch key {
            case "mqttPort": print(configuration.mqttPort)
            case "storePathRootDir": print(configuration.store.storePathRootDir)
            case "namesrvAddress":
                let cluster = try options.loadCluster()
                print(cluster.isStandalone ? cluster.localNameServerAddress(port: cluster.nameServerListenPort) : "")
            default: throw ValidationError("unknown setting: \(key) (mqttPort, storePathRootDir or namesrvAddress)")
            }
        }
    }
}
