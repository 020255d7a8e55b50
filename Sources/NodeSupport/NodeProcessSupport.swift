import Logging

/// What every node executable (`mqtt-node`, `mqbroker`, `mqnamesrv`) does the same way at start.
public enum NodeProcessSupport {
    /// Logs to standard error from `level` up; call once, before the first logger is made.
    public static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// The host a client on this machine reaches a listener bound to `listenAddress` on: loopback for a
    /// wildcard address (IPv4 or IPv6), the address itself otherwise. Used by the `probe` subcommands.
    public static func localHost(reaching listenAddress: String) -> String {
        switch listenAddress {
        case "0.0.0.0", "": "127.0.0.1"
        case "::", "[::]": "::1"
        default: listenAddress
        }
    }
}
