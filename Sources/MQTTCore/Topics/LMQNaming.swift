/// How MQTT topics and filters map to store topics and light message queue (LMQ) names.
///
/// The names follow Apache RocketMQ MQTT (`TopicUtils.normalizeTopic`, `MixAll.LMQ_PREFIX`), so that
/// an operator's knowledge of a RocketMQ cluster carries over:
///
/// 1. **First topic**: the first level of a topic or filter (`sensors` in `sensors/7/temp`). Each first
///    topic is a store topic.
/// 2. **Normalization**: a topic or filter that contains `/` gets a trailing `/` if it lacks one
///    (`a/b/c` → `a/b/c/`, `a/b/` stays, `a` stays).
/// 3. **LMQ name**: ``prefix`` (`%LMQ%`) followed by the normalized text with every `/` replaced by `%`:
///    `a/b/c` → `%LMQ%a%b%c%`, `a/+/c` → `%LMQ%a%+%c%`, `a/#` → `%LMQ%a%#%`, `a` → `%LMQ%a`.
/// 4. **Peer-to-peer**: a PUBLISH to `<firstTopic>/p2p/<clientId>` goes only to the queue
///    `/p2p/<clientId>/` (LMQ `%LMQ%%p2p%<clientId>%`).
/// 5. **Retry**: QoS > 0 messages a client did not acknowledge in time wait in `/retry/<clientId>/`
///    (under the first topic named by `clientRetryTopic`), LMQ `%LMQ%%retry%<clientId>%`.
/// 6. **Consume offsets** of a persistent session are kept under the consumer group `%LMQ%<clientId>`.
///
/// Because of rules 2 and 3 (kept for compatibility) some distinct MQTT topics share a queue name:
/// `a/b` and `a/b/` both become `%LMQ%a%b%`, and `a%b` collides with `a/b`. Unlike RocketMQ MQTT, a
/// leading `/` is not stripped when taking the first topic: `/a` has the empty first topic, not `a`,
/// since MQTT treats `/a` and `a` as different topics.
public enum LMQNaming {
    /// The prefix of every light message queue name (RocketMQ's `MixAll.LMQ_PREFIX`).
    public static let prefix = "%LMQ%"
    /// The second level that marks a peer-to-peer topic, `<firstTopic>/p2p/<clientId>`.
    public static let p2pLevel = "p2p"
    /// The second level of a client's retry queue, `/retry/<clientId>/`.
    public static let retryLevel = "retry"

    /// Rule 2: appends `/` to a topic or filter that contains a `/` but does not end with one.
    public static func normalize(_ topicOrFilter: String) -> String {
        let utf8 = topicOrFilter.utf8
        guard utf8.contains(TopicBytes.levelSeparator), utf8.last != TopicBytes.levelSeparator else {
            return topicOrFilter
        }
        return topicOrFilter + "/"
    }

    /// Rule 3: the LMQ name of a topic name or of a filter proper (without `$share/{ShareName}/`).
    ///
    /// `a/b/c` → `%LMQ%a%b%c%`, `a/+/c` → `%LMQ%a%+%c%`, `a` → `%LMQ%a`, `/a` → `%LMQ%%a%`.
    public static func lmqName(for topicOrFilter: String) -> String {
        let utf8 = topicOrFilter.utf8
        let prefixBytes = prefix.utf8
        var bytes: [UInt8] = []
        bytes.reserveCapacity(prefixBytes.count + utf8.count + 1)
        bytes.append(contentsOf: prefixBytes)
        var containsSeparator = false
        for byte in utf8 {
            if byte == TopicBytes.levelSeparator {
                containsSeparator = true
                bytes.append(separatorReplacement)
            } else {
                bytes.append(byte)
            }
        }
        if containsSeparator && utf8.last != TopicBytes.levelSeparator {
            bytes.append(separatorReplacement)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Rule 1: the first level of a topic or filter (`sensors` for `sensors/7/temp`, `` for `/a`).
    public static func firstTopic(of topicOrFilter: String) -> Substring {
        TopicBytes.firstLevel(of: topicOrFilter)
    }

    /// Whether `name` is a light message queue name (starts with `%LMQ%`).
    public static func isLMQName(_ name: String) -> Bool {
        name.utf8.starts(with: prefix.utf8)
    }

    /// Rule 4: the queue a client's peer-to-peer messages go to, `/p2p/<clientId>/`.
    public static func p2pQueueName(clientId: String) -> String {
        "/\(p2pLevel)/\(clientId)/"
    }

    /// Rule 4: the LMQ name of a client's peer-to-peer queue, `%LMQ%%p2p%<clientId>%`.
    public static func p2pLMQName(clientId: String) -> String {
        lmqName(for: p2pQueueName(clientId: clientId))
    }

    /// Rule 4: the client a peer-to-peer topic `<firstTopic>/p2p/<clientId>` is addressed to, or `nil`
    /// when `topic` is not one (its second level is not `p2p`, or the client id level is missing or empty).
    ///
    /// As in RocketMQ MQTT the recipient is the third level alone: `t/p2p/c/extra` is addressed to `c`.
    public static func p2pRecipientClientId(of topic: TopicName) -> Substring? {
        var levels = TopicLevelIterator(topic.string.utf8[...])
        guard levels.next() != nil,
            let second = levels.next(), TopicBytes.equal(second, p2pLevel.utf8[...]),
            let recipient = levels.next(), !recipient.isEmpty
        else {
            return nil
        }
        return Substring(recipient)
    }

    /// Rule 5: a client's retry queue, `/retry/<clientId>/`.
    public static func retryQueueName(clientId: String) -> String {
        "/\(retryLevel)/\(clientId)/"
    }

    /// Rule 5: the LMQ name of a client's retry queue, `%LMQ%%retry%<clientId>%`.
    public static func retryLMQName(clientId: String) -> String {
        lmqName(for: retryQueueName(clientId: clientId))
    }

    /// Rule 6: the consumer group under which the store keeps a persistent session's offsets, `%LMQ%<clientId>`.
    public static func consumerGroupName(clientId: String) -> String {
        prefix + clientId
    }

    /// What every `/` becomes in an LMQ name.
    static let separatorReplacement = UInt8(ascii: "%")
}
