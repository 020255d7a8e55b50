import Foundation

/// The process's limit on open files: every MQTT connection is one, so a server raises its soft limit to
/// the hard one at start (as mosquitto's packages and systemd units do), and logs what it got.
public enum OpenFileLimit {
    /// Raises the soft limit to the hard limit; returns the limit in force afterwards (nil if unknown).
    @discardableResult
    public static func raiseToHardLimit() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }
}
