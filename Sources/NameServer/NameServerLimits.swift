/// Bounds on what the name server stores, enforced on every write before anything is persisted.
public struct NameServerLimits: Sendable, Hashable {
    /// Longest namespace, in UTF-8 bytes. Default: 255.
    public var maxNamespaceBytes: Int
    /// Longest key, in UTF-8 bytes. Default: 1,024.
    public var maxKeyBytes: Int
    /// Longest value written by a client, in UTF-8 bytes (`maxValueSizeBytes` in namesrv.conf).
    /// `ALL_FIRST_TOPICS`, which the server maintains itself, may grow past it. Default: 64 KiB.
    public var maxValueBytes: Int
    /// Most keys over all namespaces. Default: 100,000.
    public var maxKeyCount: Int
    /// Most first topics. Default: 100,000.
    public var maxTopicCount: Int
    /// Longest first topic, in UTF-8 bytes. Default: 255.
    public var maxTopicBytes: Int
    /// Most store addresses in one topic's route. Default: 256.
    public var maxStoresPerTopic: Int
    /// Most registered nodes (store and gateway together). Default: 10,000.
    public var maxNodeCount: Int
    /// Longest node name, cluster name or address, in UTF-8 bytes. Default: 255.
    public var maxNodeFieldBytes: Int

    public init(
        maxNamespaceBytes: Int = 255,
        maxKeyBytes: Int = 1_024,
        maxValueBytes: Int = 64 * 1_024,
        maxKeyCount: Int = 100_000,
        maxTopicCount: Int = 100_000,
        maxTopicBytes: Int = 255,
        maxStoresPerTopic: Int = 256,
        maxNodeCount: Int = 10_000,
        maxNodeFieldBytes: Int = 255
    ) {
        self.maxNamespaceBytes = maxNamespaceBytes
        self.maxKeyBytes = maxKeyBytes
        self.maxValueBytes = maxValueBytes
        self.maxKeyCount = maxKeyCount
        self.maxTopicCount = maxTopicCount
        self.maxTopicBytes = maxTopicBytes
        self.maxStoresPerTopic = maxStoresPerTopic
        self.maxNodeCount = maxNodeCount
        self.maxNodeFieldBytes = maxNodeFieldBytes
    }
}
