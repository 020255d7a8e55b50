/// How the store syncs the commit log to disk (`flushDiskType` in broker.conf).
public enum FlushDiskType: String, Sendable, Hashable, CaseIterable {
    /// Appends complete at once; a flusher syncs every `flushIntervalCommitLogMillis`. A crash of the
    /// machine (not just the process) can lose the last interval.
    case asyncFlush = "ASYNC_FLUSH"
    /// An append completes only once its record is on disk. Concurrent appends share one sync (group commit).
    case syncFlush = "SYNC_FLUSH"
}

extension LMQStore {
    /// Bounds on what one append may make the store hold. Checked before anything is written.
    public struct Limits: Sendable, Hashable {
        /// The largest record (message, topic, properties, queue list) in bytes. Default 4 MiB + 64 KiB,
        /// room for a 4 MiB payload. Must fit in a commit-log segment.
        public var maxMessageSizeBytes: Int
        /// The most queues one message may be dispatched to. Default 1,024.
        public var maxLMQsPerMessage: Int
        /// The longest queue name in UTF-8 bytes. Default 1,024.
        public var maxLMQNameBytes: Int
        /// The most queues the store holds. Default 100,000,000 (ids are 32-bit).
        public var maxLMQs: Int

        public init(maxMessageSizeBytes: Int = 4 * 1024 * 1024 + 64 * 1024, maxLMQsPerMessage: Int = 1024, maxLMQNameBytes: Int = 1024, maxLMQs: Int = 100_000_000) {
            self.maxMessageSizeBytes = maxMessageSizeBytes
            self.maxLMQsPerMessage = maxLMQsPerMessage
            self.maxLMQNameBytes = maxLMQNameBytes
            self.maxLMQs = maxLMQs
        }
    }

    /// Store settings; the names follow broker.conf (RocketMQ's keys).
    public struct Configuration: Sendable, Hashable {
        /// `storePathRootDir`: holds `commitlog/`, `index/`, `checkpoint` and `metadata.db`.
        public var storePathRootDir: String
        /// `flushDiskType`. Default ASYNC_FLUSH.
        public var flushDiskType: FlushDiskType
        /// `flushIntervalCommitLog`: how often ASYNC_FLUSH syncs, in ms. Default 500.
        public var flushIntervalCommitLogMillis: Int
        /// `mappedFileSizeCommitLog`: bytes per commit-log segment. Default 1 GiB.
        public var mappedFileSizeCommitLog: Int
        /// Bytes per queue-index file. Default 64 MiB.
        public var indexFileSizeBytes: Int
        /// How often the index is synced and a checkpoint written, in ms. Recovery replays the commit log
        /// from the last checkpoint. Default 1,000.
        public var checkpointIntervalMillis: Int
        /// `fileReservedTime`: commit-log segments whose newest message is older than this many hours are
        /// deleted. Default 72.
        public var fileReservedTimeHours: Int
        /// `diskMaxUsedBytes`: when the commit log is larger, the oldest segments are deleted. nil = no budget.
        public var maxCommitLogBytes: Int?
        /// How often retention runs, in ms. Default 10,000.
        public var retentionCheckIntervalMillis: Int
        /// Populate the commit-log pages ahead of the write position on a thread of its own
        /// (`CommitLogPrefaulter`), so appends do not take their page faults. Default true.
        public var prefaultCommitLog: Bool = true
        public var limits: Limits

        public init(
            storePathRootDir: String,
            flushDiskType: FlushDiskType = .asyncFlush,
            flushIntervalCommitLogMillis: Int = 500,
            mappedFileSizeCommitLog: Int = 1024 * 1024 * 1024,
            indexFileSizeBytes: Int = 64 * 1024 * 1024,
            checkpointIntervalMillis: Int = 1000,
            fileReservedTimeHours: Int = 72,
            maxCommitLogBytes: Int? = nil,
            retentionCheckIntervalMillis: Int = 10_000,
            limits: Limits = Limits()
        ) {
            self.storePathRootDir = storePathRootDir
            self.flushDiskType = flushDiskType
            self.flushIntervalCommitLogMillis = flushIntervalCommitLogMillis
            self.mappedFileSizeCommitLog = mappedFileSizeCommitLog
            self.indexFileSizeBytes = indexFileSizeBytes
            self.checkpointIntervalMillis = checkpointIntervalMillis
            self.fileReservedTimeHours = fileReservedTimeHours
            self.maxCommitLogBytes = maxCommitLogBytes
            self.retentionCheckIntervalMillis = retentionCheckIntervalMillis
            self.limits = limits
        }
    }
}
