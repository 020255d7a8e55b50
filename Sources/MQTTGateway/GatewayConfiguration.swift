import NodeSupport
import Foundation
import LMQStore
import MQTTAuth
import MQTTCore
import NameServer
import StoreNode

/// What one gateway node needs to run: where it listens, the limits of its connections, its store and
/// its authentication. `load(directory:)` reads it from a `conf/` folder.
public struct GatewayConfiguration: Sendable {
    /// The address the MQTT listener binds to. Default `0.0.0.0`.
    public var host: String
    /// `mqttPort` in connect.conf; 0 picks a free port (tests). Default 1883.
    public var mqttPort: Int
    /// The per-connection protocol limits; `maximumPacketSizeBytes` comes from `maxPacketSizeInByte`.
    public var connection: ServerConnectionStateMachine.Configuration
    /// The LMQ store (`storePathRootDir`, `flushDiskType`, ... in broker.conf).
    public var store: LMQStore.Configuration
    /// `username`, `secretKey`, `allowAnonymous`, `authPasswordFile` in service.conf.
    public var auth: AuthConfiguration
    /// The most messages read from a queue for one subscription in one go. Default 32.
    public var deliveryBatchSize: Int
    /// `maxConn`, rate limits, `maxSubscriptionsPerClient`, ... in connect.conf (docs/limits.md).
    public var limits: GatewayLimits
    /// The TLS, WebSocket and WSS listeners (`enableTlsServer`, `mqttTlsPort`, `mqttWsPort`, ... in
    /// connect.conf). Default: none (`load` reads the file's, where WebSocket is on).
    public var transports: TransportConfiguration

    public init(
        host: String = "0.0.0.0",
        mqttPort: Int = 1883,
        connection: ServerConnectionStateMachine.Configuration = .init(),
        store: LMQStore.Configuration,
        auth: AuthConfiguration,
        deliveryBatchSize: Int = 32,
        transports: TransportConfiguration = .tcpOnly,
        limits: GatewayLimits = GatewayLimits()
    ) {
        precondition(deliveryBatchSize > 0)
        self.host = host
        self.mqttPort = mqttPort
        self.connection = connection
        self.store = store
        self.auth = auth
        self.deliveryBatchSize = deliveryBatchSize
        self.transports = transports
        self.limits = limits
    }

    /// Why the configuration folder could not be used.
    public struct LoadError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// Reads `connect.conf`, `service.conf` and `broker.conf` of `directory`. Missing keys take their defaults.
    public static func load(directory: String) throws(LoadError) -> GatewayConfiguration {
        let connect = try readProperties(directory, "connect.conf")
        let service = try readProperties(directory, "service.conf")
        let broker = try readProperties(directory, "broker.conf")

        let mqttPort = try integer(connect, "mqttPort", file: "connect.conf", default: 1883, range: 0...65_535)
        let listenAddress = connect["mqttListenAddress"].flatMap { $0.isEmpty ? nil : $0 } ?? "0.0.0.0"
        let maxPacketSize = try integer(
            connect, "maxPacketSizeInByte", file: "connect.conf", default: 1_048_576,
            range: 2...MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes
        )
        // The store settings are the store node's (StoreNode.BrokerConfiguration), shared with the standalone node.
        let store: LMQStore.Configuration
        do {
            store = try BrokerConfiguration.storeConfiguration(properties: broker)
        } catch {
            throw LoadError(message: error.message)
        }
        let auth: AuthConfiguration
        do {
            auth = try AuthConfiguration(properties: service)
        } catch {
            throw LoadError(message: "service.conf: \(error)")
        }
        return GatewayConfiguration(
            host: listenAddress,
            mqttPort: mqttPort,
            connection: .init(
                connectTimeoutSeconds: UInt32(try integer(connect, "connectTimeoutSeconds", file: "connect.conf", default: 10, range: 1...3_600)),
                maximumPacketSizeBytes: maxPacketSize
            ),
            store: store,
            auth: auth,
            transports: try TransportConfiguration(properties: connect),
            limits: try GatewayLimits(connectProperties: connect)
        )
    }

    private static func readProperties(_ directory: String, _ file: String) throws(LoadError) -> [String: String] {
        let path = (directory as NSString).appendingPathComponent(file)
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(message: "cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try PropertiesFile(parsing: text).dictionary
        } catch {
            throw LoadError(message: "\(path): \(error)")
        }
    }

    private static func integer(
        _ properties: [String: String], _ key: String, file: String, default defaultValue: Int, range: ClosedRange<Int>
    ) throws(LoadError) -> Int {
        guard let text = properties[key], !text.isEmpty else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw LoadError(message: "\(file): \(key)=\(text), expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
