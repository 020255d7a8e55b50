import Foundation
import LMQStore
import Logging
import NameServer
import NodeSupport
import Remoting

/// Settings of a store node ("broker"), as read from `broker.conf`. Every field has a default.
public struct BrokerConfiguration: Sendable, Hashable {
    /// The address the store's listener binds to (`brokerListenAddress`). Default: `0.0.0.0`.
    public var listenAddress: String
    /// The port of the store's listener (`listenPort`); 0 picks a free one. Default: 10911.
    public var listenPort: Int
    /// The host other nodes reach this one on (`brokerIP1`); nil: the listen address unless that is
    /// `0.0.0.0`, else 127.0.0.1 (see ``advertisedHost``).
    public var brokerIP1: String?
    /// The store's name in the name servers' registry (`brokerName`). Default: `broker-a`.
    public var brokerName: String
    /// The cluster it belongs to (`brokerClusterName`). Default: `DefaultCluster`.
    public var brokerClusterName: String
    /// The name servers it registers with (`namesrvAddr`, `host:port;host:port`; the environment variable
    /// `NAMESRV_ADDR` overrides it). Empty: it registers nowhere.
    public var nameServerAddresses: [RemotingAddress]
    /// The log store: `storePathRootDir`, `flushDiskType`, `flushIntervalCommitLog`,
    /// `mappedFileSizeCommitLog`, `fileReservedTime`.
    public var store: LMQStore.Configuration
    /// The least severe level logged (`logLevel`). Default: info.
    public var logLevel: Logger.Level
    /// Where `bin/mqbroker start` writes the log (`logDir`); empty: `<storePathRootDir>/logs`.
    public var logDir: String
    /// How often the node looks for dead gateways, whose clients' wills it publishes
    /// (`gatewayCheckIntervalSeconds`; only with name servers). Default: 3.
    public var gatewayCheckIntervalSeconds: Int = 3
    /// How long a gateway must be missing from every name server's list (and in two checks in a row)
    /// before it counts as dead (`gatewayMissingSeconds`). More than a gateway's 10 s heartbeat interval,
    /// so that a name server that restarted, and so lists nobody for a while, does not make live gateways
    /// look dead. Default: 15.
    public var gatewayMissingSeconds: Int = 15
    /// How often the node heartbeats to each name server (`heartbeatIntervalSeconds`): keep it well
    /// under the name servers' `nodeExpirySeconds` (30). Default: 10.
    public var heartbeatIntervalSeconds: Int = 10

    public init(
        listenAddress: String = "0.0.0.0",
        listenPort: Int = 10911,
        brokerIP1: String? = nil,
        brokerName: String = "broker-a",
        brokerClusterName: String = "DefaultCluster",
        nameServerAddresses: [RemotingAddress] = [],
        store: LMQStore.Configuration,
        logLevel: Logger.Level = .info,
        logDir: String = ""
    ) {
        self.listenAddress = listenAddress
        self.listenPort = listenPort
        self.brokerIP1 = brokerIP1
        self.brokerName = brokerName
        self.brokerClusterName = brokerClusterName
        self.nameServerAddresses = nameServerAddresses
        self.store = store
        self.logLevel = logLevel
        self.logDir = logDir
    }

    /// The keys `broker.conf` may contain.
    public static let knownKeys = [
        "listenPort", "brokerListenAddress", "brokerIP1", "brokerName", "brokerClusterName", "namesrvAddr", "storePathRootDir",
        "flushDiskType", "flushIntervalCommitLog", "mappedFileSizeCommitLog", "fileReservedTime", "logLevel", "logDir",
        "gatewayCheckIntervalSeconds", "gatewayMissingSeconds", "heartbeatIntervalSeconds",
    ]

    /// A configuration that cannot be used; the message names the file and the key.
    public struct LoadError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// The host registered with the name servers: ``brokerIP1``, else the listen address when it is a
    /// specific one, else 127.0.0.1.
    public var advertisedHost: String {
        if let brokerIP1, !brokerIP1.isEmpty { return brokerIP1 }
        switch listenAddress {
        case "0.0.0.0", "", "::", "[::]": return "127.0.0.1"
        default: return listenAddress
        }
    }

    /// Where `bin/mqbroker start` writes its log.
    public var logDirectoryPath: String {
        logDir.isEmpty ? (store.storePathRootDir as NSString).appendingPathComponent("logs") : NameServerConfiguration.expandingTilde(logDir)
    }

    /// Reads `broker.conf` text.
    ///
    /// - Parameters:
    ///   - source: the file's name, for messages.
    ///   - environment: `NAMESRV_ADDR`, when set and not empty, replaces `namesrvAddr`.
    /// - Returns: the configuration and a warning per unknown key.
    public static func parse(
        _ text: String, source: String = "broker.conf", environment: [String: String] = [:]
    ) throws(LoadError) -> (configuration: BrokerConfiguration, warnings: [String]) {
        let file: PropertiesFile
        do {
            file = try PropertiesFile(parsing: text)
        } catch {
            throw LoadError(message: "\(source): \(error)")
        }
        let properties = file.dictionary
        var configuration = BrokerConfiguration(store: try storeConfiguration(properties: properties, source: source))
        configuration.listenPort = try integer(properties, "listenPort", source: source, default: 10911, range: 0...65_535)
        if let address = properties["brokerListenAddress"], !address.isEmpty { configuration.listenAddress = address }
        if let host = properties["brokerIP1"], !host.isEmpty { configuration.brokerIP1 = host }
        if let name = properties["brokerName"], !name.isEmpty { configuration.brokerName = name }
        if let cluster = properties["brokerClusterName"], !cluster.isEmpty { configuration.brokerClusterName = cluster }
        let nameServers = environment["NAMESRV_ADDR"].flatMap { $0.isEmpty ? nil : $0 } ?? properties["namesrvAddr"] ?? ""
        configuration.nameServerAddresses = try nameServerAddresses(nameServers, source: source)
        if let text = properties["logLevel"], !text.isEmpty {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw LoadError(message: "\(source): logLevel=\(text), expected one of trace, debug, info, notice, warning, error, critical")
            }
            configuration.logLevel = level
        }
        configuration.logDir = properties["logDir"] ?? ""
        configuration.gatewayCheckIntervalSeconds = try integer(properties, "gatewayCheckIntervalSeconds", source: source, default: 3, range: 1...3_600)
        configuration.gatewayMissingSeconds = try integer(properties, "gatewayMissingSeconds", source: source, default: 15, range: 0...86_400)
        configuration.heartbeatIntervalSeconds = try integer(properties, "heartbeatIntervalSeconds", source: source, default: 10, range: 1...3_600)
        let warnings = file.keys.filter { !knownKeys.contains($0) }.map { "\(source): unknown key \($0) ignored" }
        return (configuration, warnings)
    }

    /// Reads `broker.conf` from the configuration folder `directory`.
    public static func load(directory: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(LoadError) -> (configuration: BrokerConfiguration, warnings: [String]) {
        let path = (NameServerConfiguration.expandingTilde(directory) as NSString).appendingPathComponent("broker.conf")
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(message: "cannot read \(path): \((error as NSError).localizedDescription)")
        }
        return try parse(text, source: path, environment: environment)
    }

    /// The store settings of parsed `broker.conf` properties: `storePathRootDir` (required; `~/` expanded),
    /// `flushDiskType`, `flushIntervalCommitLog`, `mappedFileSizeCommitLog`, `fileReservedTime`. Shared by
    /// the store node and the standalone gateway, which runs the store in its own process.
    public static func storeConfiguration(properties broker: [String: String], source: String = "broker.conf") throws(LoadError) -> LMQStore.Configuration {
        guard let storePath = broker["storePathRootDir"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw LoadError(message: "\(source): storePathRootDir must be set")
        }
        let flushDiskType: FlushDiskType
        switch broker["flushDiskType"] {
        case nil, "": flushDiskType = .asyncFlush
        case .some(let text):
            guard let parsed = FlushDiskType(rawValue: text) else {
                throw LoadError(message: "\(source): flushDiskType=\(text), expected ASYNC_FLUSH or SYNC_FLUSH")
            }
            flushDiskType = parsed
        }
        let flushInterval = try integer(broker, "flushIntervalCommitLog", source: source, default: 500, range: 1...3_600_000)
        var store = LMQStore.Configuration(
            storePathRootDir: NameServerConfiguration.expandingTilde(storePath),
            flushDiskType: flushDiskType,
            flushIntervalCommitLogMillis: flushInterval
        )
        if broker["mappedFileSizeCommitLog"] != nil {
            store.mappedFileSizeCommitLog = try integer(
                broker, "mappedFileSizeCommitLog", source: source, default: store.mappedFileSizeCommitLog,
                // A segment must hold the largest message and its header.
                range: (store.limits.maxMessageSizeBytes + 64 * 1024)...Int(Int32.max)
            )
        }
        store.fileReservedTimeHours = try integer(
            broker, "fileReservedTime", source: source, default: store.fileReservedTimeHours, range: 1...87_600
        )
        return store
    }

    /// `host:port;host:port` (empty: none).
    static func nameServerAddresses(_ text: String, source: String) throws(LoadError) -> [RemotingAddress] {
        var addresses: [RemotingAddress] = []
        for part in text.split(separator: ";") where !part.trimmed().isEmpty {
            guard let address = RemotingAddress(parsing: part) else {
                throw LoadError(message: "\(source): namesrvAddr has \(part), expected host:port")
            }
            addresses.append(address)
        }
        return addresses
    }

    private static func integer(
        _ properties: [String: String], _ key: String, source: String, default defaultValue: Int, range: ClosedRange<Int>
    ) throws(LoadError) -> Int {
        guard let text = properties[key], !text.isEmpty else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw LoadError(message: "\(source): \(key)=\(text), expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
