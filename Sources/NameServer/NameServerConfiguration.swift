import NodeSupport
import Foundation
import Logging
import Remoting

/// Settings of a name server, as read from `namesrv.conf`. Every field has a default.
public struct NameServerConfiguration: Sendable, Hashable {
    /// The address to listen on (`listenAddress`). Default: `0.0.0.0`, every IPv4 interface.
    public var listenAddress: String
    /// The port to listen on (`listenPort`); 0 picks a free one. Default: 9876.
    public var listenPort: Int
    /// The folder of the SQLite database (`dataDir`), as written: `~/` is the home directory, a relative
    /// path is relative to the working directory. Default: `~/mqtt-store/namesrv`.
    public var dataDir: String
    /// The folder `bin/mqnamesrv start` writes the log to (`logDir`); empty means `<dataDir>/logs`.
    public var logDir: String
    /// How long a registered node may stay silent before it is dropped from the registry
    /// (`nodeExpirySeconds`). Default: 30 s.
    public var nodeExpiry: Duration
    /// The least severe log level written (`logLevel`: trace, debug, info, notice, warning, error,
    /// critical). Default: info.
    public var logLevel: Logger.Level
    /// Bounds on the stored metadata; `maxValueSizeBytes` sets ``NameServerLimits/maxValueBytes``.
    public var limits: NameServerLimits
    /// Bounds on frames; `maxFrameSizeBytes` sets ``RemotingLimits/maxFrameSizeBytes``.
    public var remotingLimits: RemotingLimits

    public init(
        listenAddress: String = "0.0.0.0",
        listenPort: Int = 9876,
        dataDir: String = "~/mqtt-store/namesrv",
        logDir: String = "",
        nodeExpiry: Duration = .seconds(30),
        logLevel: Logger.Level = .info,
        limits: NameServerLimits = NameServerLimits(),
        remotingLimits: RemotingLimits = RemotingLimits()
    ) {
        self.listenAddress = listenAddress
        self.listenPort = listenPort
        self.dataDir = dataDir
        self.logDir = logDir
        self.nodeExpiry = nodeExpiry
        self.logLevel = logLevel
        self.limits = limits
        self.remotingLimits = remotingLimits
    }

    /// The keys `namesrv.conf` may contain.
    public static let knownKeys = [
        "listenAddress", "listenPort", "dataDir", "logDir", "nodeExpirySeconds", "logLevel", "maxValueSizeBytes", "maxFrameSizeBytes",
    ]

    /// A configuration file that cannot be used: the message names the file, the line and the key.
    public struct LoadError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        public init(message: String) {
            self.message = message
        }
    }

    /// Reads `namesrv.conf` text.
    ///
    /// - Parameter source: the file's name, for messages.
    /// - Returns: the configuration and a warning for each key this version does not know (a typo is
    ///   then visible in the log instead of silently ignored).
    public static func parse(_ text: String, source: String = "namesrv.conf") throws(LoadError) -> (configuration: NameServerConfiguration, warnings: [String]) {
        let file: PropertiesFile
        do {
            file = try PropertiesFile(parsing: text)
        } catch {
            throw LoadError(message: "\(source): \(error)")
        }
        var configuration = NameServerConfiguration()
        func fail(_ entry: PropertiesFile.Entry, _ expected: String) -> LoadError {
            LoadError(message: "\(source) line \(entry.line): \(entry.key)=\(entry.value) is invalid: expected \(expected)")
        }
        if let entry = file["listenAddress"] {
            guard !entry.value.isEmpty else { throw fail(entry, "an address such as 0.0.0.0") }
            configuration.listenAddress = entry.value
        }
        if let entry = file["listenPort"] {
            guard let port = Int(entry.value), (0...65535).contains(port) else { throw fail(entry, "a port 0...65535") }
            configuration.listenPort = port
        }
        if let entry = file["dataDir"] {
            guard !entry.value.isEmpty else { throw fail(entry, "a folder") }
            configuration.dataDir = entry.value
        }
        if let entry = file["logDir"] {
            configuration.logDir = entry.value
        }
        if let entry = file["nodeExpirySeconds"] {
            guard let seconds = Double(entry.value), seconds > 0, seconds <= 86_400 else {
                throw fail(entry, "seconds, more than 0 and at most 86400")
            }
            configuration.nodeExpiry = .milliseconds(Int64((seconds * 1_000).rounded()))
        }
        if let entry = file["logLevel"] {
            guard let level = Logger.Level(rawValue: entry.value.lowercased()) else {
                throw fail(entry, "one of trace, debug, info, notice, warning, error, critical")
            }
            configuration.logLevel = level
        }
        if let entry = file["maxFrameSizeBytes"] {
            guard let size = Int(entry.value), (1_024...1_073_741_824).contains(size) else {
                throw fail(entry, "bytes, 1024...1073741824")
            }
            configuration.remotingLimits.maxFrameSizeBytes = size
        }
        if let entry = file["maxValueSizeBytes"] {
            guard let size = Int(entry.value), size >= 1, size <= configuration.remotingLimits.maxFrameSizeBytes / 2 else {
                throw fail(entry, "bytes, 1...\(configuration.remotingLimits.maxFrameSizeBytes / 2) (half of maxFrameSizeBytes)")
            }
            configuration.limits.maxValueBytes = size
        }
        let warnings = file.keys.filter { !knownKeys.contains($0) }.map { "\(source): unknown key \($0) ignored" }
        return (configuration, warnings)
    }

    /// Reads `namesrv.conf` from the configuration folder `directory`.
    public static func load(directory: String) throws(LoadError) -> (configuration: NameServerConfiguration, warnings: [String]) {
        let path = (expandingTilde(directory) as NSString).appendingPathComponent("namesrv.conf")
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(message: "cannot read \(path): \((error as NSError).localizedDescription)")
        }
        return try parse(text, source: path)
    }

    /// ``dataDir`` as an absolute path.
    public var dataDirectoryPath: String { Self.absolutePath(dataDir) }

    /// Where `bin/mqnamesrv start` writes the log: ``logDir``, or `<dataDir>/logs` when it is empty.
    public var logDirectoryPath: String {
        logDir.isEmpty ? (dataDirectoryPath as NSString).appendingPathComponent("logs") : Self.absolutePath(logDir)
    }

    /// How often silent nodes are looked for: a quarter of the expiry, at most every second.
    public var expiryCheckInterval: Duration { min(.seconds(1), nodeExpiry / 4) }

    /// `~` and `~/…` expanded with the home directory.
    public static func expandingTilde(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + path.dropFirst()
    }

    static func absolutePath(_ path: String) -> String {
        let expanded = expandingTilde(path)
        let absolute = expanded.hasPrefix("/") ? expanded : FileManager.default.currentDirectoryPath + "/" + expanded
        return (absolute as NSString).standardizingPath
    }
}
