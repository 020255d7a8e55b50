/// Why a string is not a valid MQTT topic name or topic filter.
///
/// The rules are those of MQTT 5.0 §4.7 and §4.8.2, which agree with MQTT 3.1.1 §4.7 for everything
/// but shared subscriptions. Each case's ``description`` names the rule it enforces.
public enum TopicError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The string is empty. [MQTT-4.7.3-1]
    case empty
    /// The string is longer than the 65,535 UTF-8 bytes an MQTT string can carry (§1.5.4).
    case tooLong(bytes: Int)
    /// The string contains U+0000. [MQTT-4.7.3-2]
    case nullCharacter
    /// A topic name contains `+` or `#`. [MQTT-3.3.2-2], [MQTT-4.7.0-1]
    case wildcardInTopicName
    /// `#` is not the last character of the filter (`a/#/b`, `#a`). [MQTT-4.7.1-2]
    case multiLevelWildcardNotLast
    /// `+` or `#` shares its level with other characters (`sport+`, `a#`, `sp+rt`, `+a`).
    /// [MQTT-4.7.1-2], [MQTT-4.7.1-3]
    case wildcardNotWholeLevel
    /// `$share/` is followed by an empty share name (`$share//a`), a share name containing `+` or `#`,
    /// or a share name with no `/` and filter after it (`$share/g`). [MQTT-4.8.2-1], [MQTT-4.8.2-2]
    case invalidShareName
    /// The filter after `$share/{ShareName}/` is empty (`$share/g/`). [MQTT-4.8.2-2]
    case emptySharedFilter

    public var description: String {
        switch self {
        case .empty:
            return "topic names and topic filters must be at least one character long [MQTT-4.7.3-1]"
        case .tooLong(let bytes):
            return "topic is \(bytes) UTF-8 bytes long, more than the 65535 an MQTT string can hold [MQTT-1.5.4]"
        case .nullCharacter:
            return "topic names and topic filters must not contain U+0000 [MQTT-4.7.3-2]"
        case .wildcardInTopicName:
            return "a topic name must not contain the wildcard characters '+' or '#' [MQTT-3.3.2-2]"
        case .multiLevelWildcardNotLast:
            return "the multi-level wildcard '#' must be the last character of a topic filter [MQTT-4.7.1-2]"
        case .wildcardNotWholeLevel:
            return "a wildcard '+' or '#' must occupy an entire topic level [MQTT-4.7.1-2] [MQTT-4.7.1-3]"
        case .invalidShareName:
            return "a shared subscription needs a non-empty ShareName without '/', '+' or '#', "
                + "followed by '/' and a topic filter [MQTT-4.8.2-1] [MQTT-4.8.2-2]"
        case .emptySharedFilter:
            return "the topic filter after '$share/{ShareName}/' must not be empty [MQTT-4.8.2-2]"
        }
    }
}
