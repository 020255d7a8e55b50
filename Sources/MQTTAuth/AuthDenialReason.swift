/// Why a client was refused, with the CONNACK code for each protocol version.
///
/// The codes are exposed here so the gateway can answer without `MQTTAuth` importing the codec.
public enum AuthDenialReason: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The user name or password is wrong or missing while credentials are required.
    case badUsernameOrPassword
    /// The client is known but may not connect (for example: no credentials and anonymous access is off).
    case notAuthorized
    /// The decision could not be made: an external authentication service did not answer.
    case serverUnavailable

    /// The CONNACK return code for MQTT 3.1 and 3.1.1 (section 3.2.2.3).
    public var returnCodeV311: UInt8 {
        switch self {
        case .badUsernameOrPassword: 0x04
        case .notAuthorized: 0x05
        case .serverUnavailable: 0x03
        }
    }

    /// The CONNACK reason code for MQTT 5.0 (section 3.2.2.2).
    public var reasonCodeV5: UInt8 {
        switch self {
        case .badUsernameOrPassword: 0x86
        case .notAuthorized: 0x87
        case .serverUnavailable: 0x88
        }
    }

    /// The code to send for a CONNECT of protocol level `protocolVersion` (3, 4: the 3.1.1 code; 5: the 5.0 code).
    public func connackCode(protocolVersion: UInt8) -> UInt8 {
        protocolVersion >= 5 ? self.reasonCodeV5 : self.returnCodeV311
    }

    public var description: String {
        switch self {
        case .badUsernameOrPassword: "bad user name or password"
        case .notAuthorized: "not authorized"
        case .serverUnavailable: "server unavailable"
        }
    }
}
