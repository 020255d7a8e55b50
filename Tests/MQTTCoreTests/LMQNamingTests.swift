import Testing

@testable import MQTTCore

@Suite("LMQ naming (RocketMQ MQTT compatible)")
struct LMQNamingTests {
    @Test(
        "a topic or filter containing '/' gets a trailing '/'",
        arguments: [
            ("a/b/c", "a/b/c/"), ("a/b/c/", "a/b/c/"), ("a", "a"), ("/a", "/a/"), ("/", "/"), ("a//b", "a//b/"),
            ("a/+/c", "a/+/c/"), ("a/#", "a/#/"), ("#", "#"), ("", ""),
        ]
    )
    func normalize(_ input: String, _ expected: String) {
        #expect(LMQNaming.normalize(input) == expected)
    }

    @Test(
        "the LMQ name is %LMQ% plus the normalized text with '/' replaced by '%'",
        arguments: [
            ("a/b/c", "%LMQ%a%b%c%"), ("a/+/c", "%LMQ%a%+%c%"), ("a/#", "%LMQ%a%#%"), ("a", "%LMQ%a"),
            ("a/b/", "%LMQ%a%b%"), ("/a", "%LMQ%%a%"), ("/", "%LMQ%%"), ("sensors/7/temp", "%LMQ%sensors%7%temp%"),
            ("t/テ/x", "%LMQ%t%テ%x%"),
        ]
    )
    func lmqName(_ input: String, _ expected: String) {
        #expect(LMQNaming.lmqName(for: input) == expected)
        // The same rule written the way RocketMQ MQTT writes it: prefix + replace(normalize(x), "/", "%").
        let reference = LMQNaming.prefix + String(LMQNaming.normalize(input).map { $0 == "/" ? "%" : $0 })
        #expect(LMQNaming.lmqName(for: input) == reference)
    }

    @Test("topic names and filters expose their LMQ name; shared filters use the filter proper")
    func lmqNameProperties() throws {
        #expect(try TopicName("a/b/c").lmqName == "%LMQ%a%b%c%")
        #expect(try TopicName("a").lmqName == "%LMQ%a")
        #expect(try TopicFilter("a/+/c").lmqName == "%LMQ%a%+%c%")
        #expect(try TopicFilter("a/#").lmqName == "%LMQ%a%#%")
        #expect(try TopicFilter("$share/g/a/+/c").lmqName == "%LMQ%a%+%c%")
    }

    @Test("the first topic is the first level, a leading '/' is not skipped")
    func firstTopic() {
        #expect(LMQNaming.firstTopic(of: "sensors/7/temp") == "sensors")
        #expect(LMQNaming.firstTopic(of: "sensors") == "sensors")
        #expect(LMQNaming.firstTopic(of: "sensors/+/temp") == "sensors")
        #expect(LMQNaming.firstTopic(of: "/sensors") == "")
    }

    @Test("peer-to-peer queue names")
    func p2pQueues() throws {
        #expect(LMQNaming.p2pQueueName(clientId: "c1") == "/p2p/c1/")
        #expect(LMQNaming.p2pLMQName(clientId: "c1") == "%LMQ%%p2p%c1%")
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/p2p/c1")) == "c1")
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/p2p/c1/")) == "c1")
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/p2p/c1/extra")) == "c1")
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/p2p")) == nil)
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/p2p/")) == nil)
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/P2P/c1")) == nil)
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("t/x/c1")) == nil)
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("p2p/c1")) == nil)
        #expect(LMQNaming.p2pRecipientClientId(of: try TopicName("/p2p/c1")) == "c1")
    }

    @Test("retry queue and consumer group names")
    func retryAndGroupNames() {
        #expect(LMQNaming.retryQueueName(clientId: "c1") == "/retry/c1/")
        #expect(LMQNaming.retryLMQName(clientId: "c1") == "%LMQ%%retry%c1%")
        #expect(LMQNaming.consumerGroupName(clientId: "c1") == "%LMQ%c1")
    }

    @Test("LMQ names are recognised by their prefix")
    func recognisesLMQNames() {
        #expect(LMQNaming.isLMQName("%LMQ%a%b%"))
        #expect(LMQNaming.isLMQName(LMQNaming.p2pLMQName(clientId: "x")))
        #expect(!LMQNaming.isLMQName("a/b"))
        #expect(!LMQNaming.isLMQName("%LMQ"))
        #expect(!LMQNaming.isLMQName("%lmq%a"))
    }
}
