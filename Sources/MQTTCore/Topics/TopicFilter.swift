/// A validated MQTT topic filter, possibly a shared subscription (MQTT 5.0 §4.7, §4.8.2; 3.1.1 §4.7).
///
/// Rules enforced by ``validate(_:)``:
/// - 1 to 65,535 UTF-8 bytes [MQTT-4.7.3-1], no U+0000 [MQTT-4.7.3-2];
/// - `#` stands alone or right after `/`, and is the last character: `#`, `a/#` are valid, `a#`, `a/#/b`
///   are not [MQTT-4.7.1-2];
/// - `+` fills a whole level: `+`, `+/a`, `a/+/b`, `a/+` are valid, `a+`, `+a` are not [MQTT-4.7.1-3];
/// - empty levels are legal: `a//b`, `/a`, `a/`;
/// - a filter starting with `$share/` is a shared subscription `$share/{ShareName}/{filter}`: ShareName is
///   non-empty and has no `/`, `+` or `#`, and is followed by `/` and a non-empty valid filter
///   [MQTT-4.8.2-1], [MQTT-4.8.2-2]. `$share` alone, `$sharex/a` or `$SHARE/g/a` are ordinary filters.
///
/// The `$share/` rule is applied whatever the protocol version: MQTT 3.1.1 has no shared subscriptions,
/// but brokers commonly honour them there too, and a 3.1.1 client sending `$share//a` is refused.
///
/// Equality and hashing compare the UTF-8 bytes of ``string`` (no normalization, [MQTT-4.7.3-4]).
public struct TopicFilter: Sendable, Hashable, CustomStringConvertible {
    /// The filter as the client sent it, including any `$share/{ShareName}/` prefix.
    public let string: String
    /// The filter proper, without a shared-subscription prefix: `a/+` for `$share/g/a/+`, `string` otherwise.
    /// This is what is matched against topic names and what names the filter's queue.
    public let filter: String
    /// The ShareName of a shared subscription (`g` for `$share/g/a/+`), `nil` when the filter is not shared.
    public let shareName: String?
    /// Whether ``filter`` contains `+` or `#`.
    public let hasWildcards: Bool

    /// Validates `string` as a topic filter; see the type's documentation for the rules.
    /// - Throws: the first ``TopicError`` found.
    public init(_ string: String) throws(TopicError) {
        let parsed = try Self.parse(string)
        self.string = string
        self.hasWildcards = parsed.hasWildcards
        let utf8 = string.utf8
        if let shareNameRange = parsed.shareNameRange {
            self.shareName = String(Substring(utf8[shareNameRange]))
            self.filter = String(Substring(utf8[parsed.filterStart...]))
        } else {
            self.shareName = nil
            self.filter = string
        }
    }

    /// Checks `string` against the topic-filter rules, `$share/` rules included, without allocating.
    ///
    /// - Throws: ``TopicError/empty``, ``TopicError/tooLong(bytes:)``, ``TopicError/nullCharacter``,
    ///   ``TopicError/multiLevelWildcardNotLast``, ``TopicError/wildcardNotWholeLevel``,
    ///   ``TopicError/invalidShareName``, ``TopicError/emptySharedFilter``.
    public static func validate(_ string: String) throws(TopicError) {
        _ = try parse(string)
    }

    /// Whether this is a shared subscription (`$share/{ShareName}/{filter}`).
    public var isShared: Bool { shareName != nil }

    /// The first level of ``filter``: `sensors` for `sensors/+/temp` and for `$share/g/sensors/#`.
    /// It is `+` or `#` when the filter starts with a wildcard, i.e. spans every first topic.
    public var firstTopic: Substring {
        TopicBytes.firstLevel(of: filter)
    }

    /// The `/`-separated levels of ``filter``, empty ones included: `a/+/` → `["a", "+", ""]`.
    public var levels: [Substring] {
        TopicBytes.levels(of: filter)
    }

    /// The name of this filter's light message queue, from ``filter`` (so every share group of a filter
    /// reads the same queue): `%LMQ%a%+%c%` for `a/+/c`. See ``LMQNaming/lmqName(for:)``.
    public var lmqName: String {
        LMQNaming.lmqName(for: filter)
    }

    /// Whether `topic` matches this filter (MQTT 5.0 §4.7.1, §4.7.2), walking both strings byte by byte.
    ///
    /// - `#` matches the rest of the topic, including its parent level: `a/#` matches `a`, `a/` and `a/b/c`;
    /// - `+` matches exactly one level, which may be empty: `a/+` matches `a/` but not `a` nor `a/b/c`;
    /// - a filter starting with `+` or `#` does not match a topic starting with `$` [MQTT-4.7.2-1];
    /// - levels are compared byte for byte, case-sensitively, with no normalization [MQTT-4.7.3-4].
    public func matches(_ topic: TopicName) -> Bool {
        TopicBytes.withContiguousBytes(filter.utf8[...]) { filterBytes in
            TopicBytes.withContiguousBytes(topic.string.utf8[...]) { topicBytes in
                Self.matches(filter: filterBytes, topic: topicBytes)
            }
        }
    }

    public var description: String { string }

    public static func == (lhs: TopicFilter, rhs: TopicFilter) -> Bool {
        TopicBytes.equal(lhs.string.utf8[...], rhs.string.utf8[...])
    }

    public func hash(into hasher: inout Hasher) {
        TopicBytes.hash(string.utf8[...], into: &hasher)
    }
}

extension TopicFilter {
    /// The shared-subscription prefix; only `$share/` followed by more text is special [MQTT-4.8.2-1].
    public static let sharePrefix = "$share/"

    /// What validation learned about a filter, as positions in its UTF-8 view.
    struct Parsed {
        var shareNameRange: Range<String.UTF8View.Index>?
        var filterStart: String.UTF8View.Index
        var hasWildcards: Bool
    }

    /// Validates and locates the parts of a filter in one allocation-free pass.
    static func parse(_ string: String) throws(TopicError) -> Parsed {
        let utf8 = string.utf8
        if utf8.isEmpty { throw .empty }  // [MQTT-4.7.3-1]
        let byteCount = utf8.count
        if byteCount > TopicBytes.maxLengthBytes { throw .tooLong(bytes: byteCount) }

        var filterStart = utf8.startIndex
        var shareNameRange: Range<String.UTF8View.Index>?
        if utf8.starts(with: sharePrefix.utf8) {
            let shareNameStart = utf8.index(utf8.startIndex, offsetBy: sharePrefix.utf8.count)
            var index = shareNameStart
            while index != utf8.endIndex && utf8[index] != TopicBytes.levelSeparator {
                switch utf8[index] {
                case 0:
                    throw .nullCharacter  // [MQTT-4.7.3-2]
                case TopicBytes.singleLevelWildcard, TopicBytes.multiLevelWildcard:
                    throw .invalidShareName  // [MQTT-4.8.2-2]
                default:
                    utf8.formIndex(after: &index)
                }
            }
            // "$share//a" has an empty ShareName [MQTT-4.8.2-1]; "$share/g" has no "/" after it [MQTT-4.8.2-2].
            if index == shareNameStart || index == utf8.endIndex { throw .invalidShareName }
            shareNameRange = shareNameStart..<index
            filterStart = utf8.index(after: index)
            if filterStart == utf8.endIndex { throw .emptySharedFilter }  // [MQTT-4.8.2-2]
        }

        var hasWildcards = false
        var isAtLevelStart = true
        var index = filterStart
        while index != utf8.endIndex {
            let byte = utf8[index]
            let next = utf8.index(after: index)
            switch byte {
            case 0:
                throw .nullCharacter  // [MQTT-4.7.3-2]
            case TopicBytes.levelSeparator:
                isAtLevelStart = true
                index = next
                continue
            case TopicBytes.multiLevelWildcard:
                guard isAtLevelStart else { throw .wildcardNotWholeLevel }  // [MQTT-4.7.1-2]
                guard next == utf8.endIndex else { throw .multiLevelWildcardNotLast }  // [MQTT-4.7.1-2]
                hasWildcards = true
            case TopicBytes.singleLevelWildcard:
                // [MQTT-4.7.1-3]
                guard isAtLevelStart, next == utf8.endIndex || utf8[next] == TopicBytes.levelSeparator else {
                    throw .wildcardNotWholeLevel
                }
                hasWildcards = true
            default:
                break
            }
            isAtLevelStart = false
            index = next
        }
        return Parsed(shareNameRange: shareNameRange, filterStart: filterStart, hasWildcards: hasWildcards)
    }

    /// Matches a validated filter proper against a topic name, byte by byte, allocating nothing.
    @inlinable
    static func matches<Bytes: Collection<UInt8>>(filter: Bytes, topic: Bytes) -> Bool {
        // [MQTT-4.7.2-1] wildcards at the first level do not match topics beginning with '$'.
        if topic.first == TopicBytes.dollar,
            let first = filter.first,
            first == TopicBytes.singleLevelWildcard || first == TopicBytes.multiLevelWildcard
        {
            return false
        }
        var filterIndex = filter.startIndex
        var topicIndex = topic.startIndex
        // False once the topic's levels are used up; distinct from "positioned on an empty last level".
        var topicHasLevel = true
        while true {
            // Both indices sit at the start of a level.
            if filterIndex != filter.endIndex && filter[filterIndex] == TopicBytes.multiLevelWildcard {
                return true  // '#' is last and matches zero or more remaining levels.
            }
            guard topicHasLevel else { return false }
            if filterIndex != filter.endIndex && filter[filterIndex] == TopicBytes.singleLevelWildcard {
                filter.formIndex(after: &filterIndex)
                while topicIndex != topic.endIndex && topic[topicIndex] != TopicBytes.levelSeparator {
                    topic.formIndex(after: &topicIndex)
                }
            } else {
                while filterIndex != filter.endIndex && filter[filterIndex] != TopicBytes.levelSeparator {
                    guard topicIndex != topic.endIndex, topic[topicIndex] == filter[filterIndex] else { return false }
                    filter.formIndex(after: &filterIndex)
                    topic.formIndex(after: &topicIndex)
                }
                if topicIndex != topic.endIndex && topic[topicIndex] != TopicBytes.levelSeparator { return false }
            }
            // Each index is now on a '/' or at its end.
            if filterIndex == filter.endIndex { return topicIndex == topic.endIndex }
            filter.formIndex(after: &filterIndex)
            if topicIndex == topic.endIndex {
                topicHasLevel = false
            } else {
                topic.formIndex(after: &topicIndex)
            }
        }
    }
}
