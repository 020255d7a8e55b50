import Foundation
import Logging
import NodeSupport

/// The observability keys of `connect.conf` and `service.conf`: the Prometheus exporter, `$SYS` topics and
/// the log level. docs/metrics.md describes them.
public struct MetricsConfiguration: Sendable, Hashable {
    /// `enableExporter` (connect.conf): serve `/metrics`. Default true.
    public var enableExporter: Bool
    /// `exporterListenAddress` (connect.conf). Default `0.0.0.0`.
    public var exporterListenAddress: String
    /// `exporterPort` (connect.conf); 0 picks a free port (logged). Default 9090.
    public var exporterPort: Int
    /// `sysInterval` (connect.conf): seconds between `$SYS/broker/...` updates; 0 turns them off. Default 10.
    public var sysIntervalSeconds: Int
    /// `logLevel` (service.conf): the level when `--log-level` is not given; nil when the key is absent.
    public var logLevel: Logger.Level?

    public init(
        enableExporter: Bool = true, exporterListenAddress: String = "0.0.0.0", exporterPort: Int = 9090, sysIntervalSeconds: Int = 10,
        logLevel: Logger.Level? = nil
    ) {
        self.enableExporter = enableExporter
        self.exporterListenAddress = exporterListenAddress
        self.exporterPort = exporterPort
        self.sysIntervalSeconds = sysIntervalSeconds
        self.logLevel = logLevel
    }

    /// Reads the keys from `directory`'s connect.conf and service.conf; missing keys take their defaults.
    public static func load(directory: String) throws(GatewayConfiguration.LoadError) -> MetricsConfiguration {
        let connect = try properties(directory, "connect.conf")
        let service = try properties(directory, "service.conf")
        var configuration = MetricsConfiguration()
        switch connect["enableExporter"]?.lowercased() {
        case nil, "", "true": configuration.enableExporter = true
        case "false": configuration.enableExporter = false
        case .some(let text): throw GatewayConfiguration.LoadError(message: "connect.conf: enableExporter=\(text), expected true or false")
        }
        if let address = connect["exporterListenAddress"], !address.isEmpty { configuration.exporterListenAddress = address }
        configuration.exporterPort = try integer(connect, "exporterPort", default: 9090, range: 0...65_535)
        configuration.sysIntervalSeconds = try integer(connect, "sysInterval", default: 10, range: 0...86_400)
        if let text = service["logLevel"], !text.isEmpty {
            guard let level = Logger.Level(rawValue: text) else {
                throw GatewayConfiguration.LoadError(
                    message: "service.conf: logLevel=\(text), expected trace, debug, info, notice, warning, error or critical"
                )
            }
            configuration.logLevel = level
        }
        return configuration
    }

    private static func properties(_ directory: String, _ file: String) throws(GatewayConfiguration.LoadError) -> [String: String] {
        let path = (directory as NSString).appendingPathComponent(file)
        // A missing file means defaults; GatewayConfiguration.load reports unreadable ones.
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        do {
            return try PropertiesFile(parsing: text).dictionary
        } catch {
            throw GatewayConfiguration.LoadError(message: "\(path): \(error)")
        }
    }

    private static func integer(
        _ properties: [String: String], _ key: String, default defaultValue: Int, range: ClosedRange<Int>
    ) throws(GatewayConfiguration.LoadError) -> Int {
        guard let text = properties[key], !text.isEmpty else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw GatewayConfiguration.LoadError(message: "connect.conf: \(key)=\(text), expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
