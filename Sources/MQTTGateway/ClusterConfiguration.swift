import Foundation
import NodeSupport

/// How a node takes part in a cluster, from `service.conf`: the name servers it reports to, or — with
/// none (`NAMESRV_ADDR` empty) — standalone mode, where the node runs the name server in its own process.
public struct ClusterConfiguration: Sendable, Hashable {
    /// `NAMESRV_ADDR`: the name servers, `host:port` each (written `host:port;host:port`). Empty means
    /// standalone. Default: empty.
    public var nameServerAddresses: [String]
    /// `autoCreateFirstTopic`: a PUBLISH or SUBSCRIBE to a first topic the name server does not know
    /// creates it. Default: true.
    public var autoCreateFirstTopic: Bool
    /// `namesrvListenAddress`: where the in-process name server of a standalone node listens.
    /// Default: `0.0.0.0`.
    public var nameServerListenAddress: String
    /// `namesrvListenPort`: the port of the in-process name server of a standalone node; 0 picks a
    /// free one (tests). Default: 9876, where `mqadmin` looks when given no `-n`.
    public var nameServerListenPort: Int
    /// `storeNodeAddress`: in cluster mode, the `host:port` of the store node (`bin/mqbroker`) this
    /// gateway keeps its messages and sessions on. Empty: the first store node registered with the name
    /// servers (by address). Default: empty.
    public var storeNodeAddress: String?
    /// `storeNodeWaitSeconds`: in cluster mode, how long a starting gateway waits for a store node to
    /// register before it gives up. Default: 60.
    public var storeNodeWaitSeconds: Int
    /// `heartbeatIntervalSeconds`: in cluster mode, how often the gateway heartbeats to the name servers;
    /// keep it well under their `nodeExpirySeconds` (30). Default: 10.
    public var heartbeatIntervalSeconds: Int = 10
    /// `storeListenAddress`: in standalone mode, where the store listener binds. Server applications
    /// (`LMQClient`, `mqadmin sendMessage`/`consumeMessage`) produce to and consume from the node's store
    /// through it, as they would through a cluster's store node. Default: `127.0.0.1` (the store protocol
    /// has no authentication: open it wider only on a trusted network).
    public var storeListenAddress: String = "127.0.0.1"
    /// `storeListenPort`: in standalone mode, the port of the store listener; 0 picks a free one, -1
    /// turns it off. The listener registers with the in-process name server as a store node, so clients
    /// find it through `NAMESRV_ADDR` like a cluster's; nil: no listener. Default: 10911.
    public var storeListenPort: Int?

    public init(
        nameServerAddresses: [String] = [],
        autoCreateFirstTopic: Bool = true,
        nameServerListenAddress: String = "0.0.0.0",
        nameServerListenPort: Int = 9876,
        storeNodeAddress: String? = nil,
        storeNodeWaitSeconds: Int = 60,
        storeListenPort: Int? = 10911
    ) {
        precondition(storeListenPort.map { (0...65_535).contains($0) } ?? true, "storeListenPort must be 0...65535")
        self.storeListenPort = storeListenPort
        precondition((0...65_535).contains(nameServerListenPort), "namesrvListenPort must be 0...65535")
        self.nameServerAddresses = nameServerAddresses
        self.autoCreateFirstTopic = autoCreateFirstTopic
        self.nameServerListenAddress = nameServerListenAddress
        self.nameServerListenPort = nameServerListenPort
        self.storeNodeAddress = storeNodeAddress
        self.storeNodeWaitSeconds = storeNodeWaitSeconds
    }

    /// Whether the node runs its own name server (no `NAMESRV_ADDR`).
    public var isStandalone: Bool { nameServerAddresses.isEmpty }

    /// The address a client on this machine reaches the in-process name server on, for the log and
    /// `bin/mqtt.sh`: a wildcard listen address is reached through loopback.
    public func localNameServerAddress(port: Int) -> String {
        switch nameServerListenAddress {
        case "0.0.0.0", "": return "127.0.0.1:\(port)"
        case "::", "[::]": return "[::1]:\(port)"
        default:
            return nameServerListenAddress.contains(":") ? "[\(nameServerListenAddress)]:\(port)" : "\(nameServerListenAddress):\(port)"
        }
    }

    /// Reads `service.conf` of the configuration folder `directory`. Missing keys take their defaults.
    public static func load(directory: String) throws(GatewayConfiguration.LoadError) -> ClusterConfiguration {
        let path = (directory as NSString).appendingPathComponent("service.conf")
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .init(message: "cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try parse(text)
        } catch {
            throw .init(message: "\(path): \(error.message)")
        }
    }

    /// Parses `service.conf` text; errors name the key.
    public static func parse(_ text: String) throws(GatewayConfiguration.LoadError) -> ClusterConfiguration {
        let properties: [String: String]
        do {
            properties = try PropertiesFile(parsing: text).dictionary
        } catch {
            throw .init(message: "\(error)")
        }
        var configuration = ClusterConfiguration()
        // Separated by `;` as in RocketMQ (and `mqadmin -n`); a `,` is accepted too.
        let addresses = (properties["NAMESRV_ADDR"] ?? "")
            .split(whereSeparator: { $0 == ";" || $0 == "," })
            .map { String($0.trimmed()) }
            .filter { !$0.isEmpty }
        for address in addresses where !Self.isHostPort(address) {
            throw .init(message: "NAMESRV_ADDR: \(address) is not host:port")
        }
        configuration.nameServerAddresses = addresses
        if let address = properties["storeListenAddress"].map({ String($0.trimmed()) }), !address.isEmpty {
            configuration.storeListenAddress = address
        }
        if let text = properties["storeListenPort"].map({ String($0.trimmed()) }), !text.isEmpty {
            guard let port = Int(text), (-1...65_535).contains(port) else {
                throw .init(message: "storeListenPort=\(text), expected an integer in 0...65535, or -1 for none")
            }
            configuration.storeListenPort = port == -1 ? nil : port
        }
        switch properties["autoCreateFirstTopic"]?.trimmed().lowercased() {
        case nil, "": break
        case "true": configuration.autoCreateFirstTopic = true
        case "false": configuration.autoCreateFirstTopic = false
        case .some(let other): throw .init(message: "autoCreateFirstTopic=\(other), expected true or false")
        }
        if let address = properties["namesrvListenAddress"].map({ String($0.trimmed()) }), !address.isEmpty {
            configuration.nameServerListenAddress = address
        }
        if let text = properties["namesrvListenPort"].map({ String($0.trimmed()) }), !text.isEmpty {
            guard let port = Int(text), (0...65_535).contains(port) else {
                throw .init(message: "namesrvListenPort=\(text), expected an integer in 0...65535")
            }
            configuration.nameServerListenPort = port
        }
        if let address = properties["storeNodeAddress"].map({ String($0.trimmed()) }), !address.isEmpty {
            guard Self.isHostPort(address) else { throw .init(message: "storeNodeAddress: \(address) is not host:port") }
            configuration.storeNodeAddress = address
        }
        if let text = properties["heartbeatIntervalSeconds"].map({ String($0.trimmed()) }), !text.isEmpty {
            guard let seconds = Int(text), (1...3_600).contains(seconds) else {
                throw .init(message: "heartbeatIntervalSeconds=\(text), expected 1...3600 seconds")
            }
            configuration.heartbeatIntervalSeconds = seconds
        }
        if let text = properties["storeNodeWaitSeconds"].map({ String($0.trimmed()) }), !text.isEmpty {
            guard let seconds = Int(text), seconds >= 0 else {
                throw .init(message: "storeNodeWaitSeconds=\(text), expected a whole number of seconds")
            }
            configuration.storeNodeWaitSeconds = seconds
        }
        return configuration
    }

    /// `host:port` with a port 1...65535 (an IPv6 host in brackets).
    private static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":") else { return false }
        let host = text[..<colon]
        let port = text[text.index(after: colon)...]
        guard !host.isEmpty, !host.contains(where: \.isWhitespace), let number = Int(port), (1...65_535).contains(number) else { return false }
        return !host.contains(":") || (host.hasPrefix("[") && host.hasSuffix("]"))
    }
}

