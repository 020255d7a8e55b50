import MQTTCore

/// Why an `MQTTClient` operation failed or why its connection closed.
///
/// Refusals by the server carry the reason code (and, in MQTT 5.0, the Reason String) the server sent.
public enum MQTTClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server refused the connection: CONNACK carried a failure reason code (§3.2.2.2). In 3.1.1 the
    /// connect return code is mapped onto the 5.0 code of the same meaning.
    case connectionRefused(reasonCode: MQTTReasonCode, reasonString: String?)
    /// The server refused a QoS 1 or 2 PUBLISH: PUBACK or PUBREC carried a failure reason code (5.0 only).
    case publishRefused(reasonCode: MQTTReasonCode, reasonString: String?)
    /// The server refused a subscription: its SUBACK reason code is a failure.
    case subscriptionRefused(topicFilter: String, reasonCode: MQTTReasonCode, reasonString: String?)
    /// The server refused to remove a subscription: its UNSUBACK reason code is a failure (5.0 only).
    case unsubscribeRefused(topicFilter: String, reasonCode: MQTTReasonCode, reasonString: String?)
    /// The server closed the connection with a DISCONNECT (5.0 only).
    case serverDisconnected(reasonCode: MQTTReasonCode, reasonString: String?)

    /// The operation needs an open MQTT connection (after `connect()` returned, before it closed).
    case notConnected
    /// `connect()` was called while a connection is being opened, is open, or is being closed.
    case alreadyConnected
    /// The client was shut down; it cannot be used any more.
    case shutdown

    /// The TCP connection or the CONNACK did not arrive within `Configuration.connectTimeout`.
    case connectTimeout
    /// No PINGRESP arrived within the ping response timeout (§3.1.2.10).
    case keepAliveTimeout
    /// The network connection closed without an MQTT reason (the peer closed it, or an abrupt close).
    case connectionClosed
    /// A network error: the TCP connection could not be opened or failed. The text is the underlying error's.
    case connectionError(String)

    /// A QoS 1 or 2 PUBLISH was sent on a connection whose session the server did not resume
    /// (CONNACK Session Present was 0), so whether it arrived is unknown ([MQTT-4.4.0-1]).
    case sessionNotResumed
    /// The server broke the protocol; the connection was closed (in 5.0 after a DISCONNECT with `reasonCode`).
    case protocolViolation(reasonCode: MQTTReasonCode, detail: String)
    /// A packet from the server could not be decoded; the connection was closed.
    case decodeFailed(MQTTDecodeError)
    /// A packet could not be encoded (too large for the server's Maximum Packet Size, a string over 65,535 bytes, ...).
    case encodeFailed(MQTTEncodeError)

    /// The topic of a PUBLISH is not a valid topic name (§4.7).
    case invalidTopicName(String, TopicError)
    /// A topic filter of SUBSCRIBE or UNSUBSCRIBE is not valid (§4.7).
    case invalidTopicFilter(String, TopicError)
    /// SUBSCRIBE and UNSUBSCRIBE need at least one topic filter ([MQTT-3.8.3-2], [MQTT-3.10.3-2]).
    case noTopicFilters
    /// The PUBLISH asks for a QoS above the server's Maximum QoS ([MQTT-3.2.2-11]).
    case qosNotSupported(requested: MQTTQoS, maximum: MQTTQoS)
    /// The PUBLISH asks to retain but the server said Retain Available 0 ([MQTT-3.2.2-14]).
    case retainNotSupported
    /// More QoS 1/2 publishes are waiting for a free inflight slot than `Configuration.maxQueuedPublishes`.
    case publishQueueFull(limit: Int)
    /// The `messages` stream holds `Configuration.maxBufferedMessages` undelivered messages; the connection
    /// was closed without acknowledging the message that did not fit, so the server keeps it.
    case messageBufferFull(limit: Int)
    /// All 65,535 packet identifiers are in use ([MQTT-2.2.1-3]).
    case noPacketIdentifierAvailable

    public var description: String {
        switch self {
        case .connectionRefused(let code, let text):
            return "connection refused by the server: \(code)\(Self.suffix(text))"
        case .publishRefused(let code, let text):
            return "publish refused by the server: \(code)\(Self.suffix(text))"
        case .subscriptionRefused(let filter, let code, let text):
            return "subscription to \"\(filter)\" refused by the server: \(code)\(Self.suffix(text))"
        case .unsubscribeRefused(let filter, let code, let text):
            return "unsubscribe from \"\(filter)\" refused by the server: \(code)\(Self.suffix(text))"
        case .serverDisconnected(let code, let text):
            return "the server disconnected: \(code)\(Self.suffix(text))"
        case .notConnected:
            return "not connected"
        case .alreadyConnected:
            return "a connection is already open, opening or closing"
        case .shutdown:
            return "the client has been shut down"
        case .connectTimeout:
            return "timed out connecting to the server"
        case .keepAliveTimeout:
            return "no PINGRESP from the server within the ping response timeout"
        case .connectionClosed:
            return "the connection closed"
        case .connectionError(let text):
            return "network error: \(text)"
        case .sessionNotResumed:
            return "the server did not resume the session; the message's delivery is unknown"
        case .protocolViolation(let code, let detail):
            return "protocol violation by the server (\(code)): \(detail)"
        case .decodeFailed(let error):
            return "could not decode a packet from the server: \(error)"
        case .encodeFailed(let error):
            return "could not encode the packet: \(error)"
        case .invalidTopicName(let topic, let error):
            return "invalid topic name \"\(topic)\": \(error)"
        case .invalidTopicFilter(let filter, let error):
            return "invalid topic filter \"\(filter)\": \(error)"
        case .noTopicFilters:
            return "at least one topic filter is required"
        case .qosNotSupported(let requested, let maximum):
            return "QoS \(requested.rawValue) exceeds the server's maximum QoS \(maximum.rawValue)"
        case .retainNotSupported:
            return "the server does not support retained messages"
        case .publishQueueFull(let limit):
            return "more than \(limit) publishes are waiting for an inflight slot"
        case .messageBufferFull(let limit):
            return "\(limit) received messages are waiting to be read from `messages`; connection closed"
        case .noPacketIdentifierAvailable:
            return "all 65535 packet identifiers are in use"
        }
    }

    private static func suffix(_ reasonString: String?) -> String {
        reasonString.map { " (\($0))" } ?? ""
    }
}
