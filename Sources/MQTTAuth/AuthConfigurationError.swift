/// A `service.conf` auth setting that is missing or wrong.
public enum AuthConfigurationError: Error, Hashable, CustomStringConvertible {
    /// `key` must be set because of another setting.
    case missingKey(String, neededBecause: String)
    /// `key` has a value that is not one of `expected`.
    case invalidValue(key: String, value: String, expected: String)
    /// No scheme is configured and anonymous access is off: nobody could connect.
    case nothingConfigured

    public var description: String {
        switch self {
        case .missingKey(let key, let neededBecause):
            "service.conf: '\(key)' is missing; it is required because \(neededBecause)"
        case .invalidValue(let key, let value, let expected):
            "service.conf: '\(key)=\(value)' is invalid; expected \(expected)"
        case .nothingConfigured:
            "service.conf: no authentication configured; set 'username' and 'secretKey', "
                + "or 'authPasswordFile', or 'allowAnonymous=true'"
        }
    }
}
