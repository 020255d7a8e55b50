/// A validated MQTT topic name: the topic a PUBLISH is sent to (MQTT 5.0 §4.7, 3.1.1 §4.7).
///
/// A topic name is 1 to 65,535 UTF-8 bytes, contains no U+0000 and no wildcard characters. Levels are
/// separated by `/` and may be empty (`a//b`, `/a`, `a/` are all valid and all distinct).
///
/// Equality and hashing compare UTF-8 bytes, not Swift's canonically-equivalent `String` equality,
/// because subscription matching must not normalize [MQTT-4.7.3-4].
public struct TopicName: Sendable, Hashable, CustomStringConvertible {
    /// The topic name as it was sent.
    public let string: String

    /// Validates `string` as a topic name.
    /// - Throws: the first ``TopicError`` found, see ``validate(_:)``.
    public init(_ string: String) throws(TopicError) {
        try Self.validate(string)
        self.string = string
    }

    /// Checks `string` against the topic-name rules without allocating; the decoder runs this on every PUBLISH.
    ///
    /// - Throws: ``TopicError/empty`` [MQTT-4.7.3-1], ``TopicError/tooLong(bytes:)``,
    ///   ``TopicError/nullCharacter`` [MQTT-4.7.3-2], ``TopicError/wildcardInTopicName`` [MQTT-3.3.2-2].
    public static func validate(_ string: String) throws(TopicError) {
        let utf8 = string.utf8
        if utf8.isEmpty { throw .empty }  // [MQTT-4.7.3-1]
        let byteCount = utf8.count
        if byteCount > TopicBytes.maxLengthBytes { throw .tooLong(bytes: byteCount) }
        for byte in utf8 {
            switch byte {
            case 0:
                throw .nullCharacter  // [MQTT-4.7.3-2]
            case TopicBytes.singleLevelWildcard, TopicBytes.multiLevelWildcard:
                throw .wildcardInTopicName  // [MQTT-3.3.2-2]
            default:
                continue
            }
        }
    }

    /// The `/`-separated levels, empty ones included: `a//b` → `["a", "", "b"]`, `a/` → `["a", ""]`.
    ///
    /// Allocates an array; hot paths (matching) walk the bytes instead.
    public var levels: [Substring] {
        TopicBytes.levels(of: string)
    }

    /// Whether the topic starts with `$` (`$SYS/...`): such topics are not matched by filters that start
    /// with a wildcard [MQTT-4.7.2-1], and servers keep them for their own use.
    public var isSystemTopic: Bool {
        string.utf8.first == TopicBytes.dollar
    }

    /// The first level: `sensors` for `sensors/7/temp`, the whole name when it has no `/`,
    /// and the empty string for `/a` (MQTT keeps `/a` and `a` distinct, so the leading `/` is not skipped).
    ///
    /// In the gateway each first topic is a store topic (see ``LMQNaming``).
    public var firstTopic: Substring {
        TopicBytes.firstLevel(of: string)
    }

    /// The name of this topic's light message queue, e.g. `%LMQ%a%b%c%` for `a/b/c`; see ``LMQNaming/lmqName(for:)``.
    public var lmqName: String {
        LMQNaming.lmqName(for: string)
    }

    public var description: String { string }

    public static func == (lhs: TopicName, rhs: TopicName) -> Bool {
        TopicBytes.equal(lhs.string.utf8[...], rhs.string.utf8[...])
    }

    public func hash(into hasher: inout Hasher) {
        TopicBytes.hash(string.utf8[...], into: &hasher)
    }
}
