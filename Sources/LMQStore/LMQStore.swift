import Foundation
import Logging
import NIOConcurrencyHelpers

/// The LMQ log engine: an append-only commit log with light message queues indexed over it
/// (docs/store.md).
///
/// `append(_:to:)` writes a message once and gives it the next offset in every queue it is
/// dispatched to, atomically: offsets are assigned, the record written and the index updated under
/// one lock, so every queue's offsets are gap-free and never repeat, whatever the concurrency.
/// Under SYNC_FLUSH the append completes when its record is on disk; a flusher thread syncs for all
/// waiting appends at once (group commit).
///
/// `@unchecked Sendable`: all mutable state is guarded — the log, the index and the waiters by `lock`,
/// the flusher's state by `flushCondition`, the last checkpoint by `checkpointLock` — and the files it
/// maps are only written under `lock`.
public final class LMQStore: @unchecked Sendable {
    public let configuration: Configuration
    let logger: Logger
    private let checkpointPath: String

    private let lock = NIOLock()
    private var commitLog: CommitLog
    private var index: LMQIndex
    private var isClosed = false
    private var queueWaiters: [String: [QueueWaiter]] = [:]
    private var nextWaiterID: UInt64 = 0
    private var listeners: [UInt64: @Sendable ([QueueOffset]) -> Void] = [:]

    private let flushCondition = NSCondition()
    private var flushedPosition: Int64
    /// Unsafe continuations: resumed exactly once, by the flusher or on the spot; one per SYNC_FLUSH append.
    private var syncWaiters: [(position: Int64, continuation: UnsafeContinuation<Void, Error>)] = []
    /// SYNC_FLUSH appends that have started but not yet registered in `syncWaiters`.
    private var appendsInProgress = 0
    /// The longest the flusher waits for appends already in progress to join a sync (it waits only while
    /// there are some); measured: 1 ms gives about 8% more than 0.2 ms at 256 appenders.
    static let groupCommitGatherSeconds = 0.001
    private var flusherStopping = false
    private var flusherFinished = false
    private var flusherFailure: Error?
    /// Records decoded for a reader, reused by the next readers of the same record (fan-out).
    private let decodedRecords = DecodedRecordCache()
    /// Populates the pages ahead of the write position (set once, at the end of `init`).
    private var prefaulter: CommitLogPrefaulter?
    /// Serializes checkpoint writers (the flusher and `checkpoint()`); guards `lastCheckpoint`.
    private let checkpointLock = NIOLock()
    private var lastCheckpoint: Checkpoint?

    private struct QueueWaiter {
        var id: UInt64
        var afterOffset: Int64
        var continuation: CheckedContinuation<Void, Error>
    }

    /// Opens (or creates) the store under `configuration.storePathRootDir`, recovering from a crash if
    /// needed: a torn commit-log tail is truncated, the index is loaded from the last checkpoint and
    /// brought up to date from the commit log (or rebuilt from it if damaged). Refuses files of an
    /// unknown format version.
    public init(configuration: Configuration, logger: Logger = Logger(label: "lmq.store")) throws {
        precondition(configuration.limits.maxMessageSizeBytes <= configuration.mappedFileSizeCommitLog - CommitLogSegment.headerSize,
                     "maxMessageSizeBytes must fit in a commit-log segment")
        self.configuration = configuration
        self.logger = logger
        let root = configuration.storePathRootDir
        try createDirectory(root)
        checkpointPath = root + "/checkpoint"
        let started = DispatchTime.now()

        let checkpoint = try Checkpoint.read(path: checkpointPath)
        let commitLog = try CommitLog(
            directory: root + "/commitlog", segmentSize: configuration.mappedFileSizeCommitLog,
            recoverFrom: checkpoint?.commitLogPosition ?? 0, logger: logger
        )
        var replayFrom = commitLog.minPosition
        var loaded: LMQIndex?
        if let checkpoint, checkpoint.commitLogPosition <= commitLog.writePosition {
            do {
                let index = try LMQIndex(
                    directory: root + "/index", fileSize: configuration.indexFileSizeBytes,
                    allocationEnd: checkpoint.indexAllocationEnd, validBelow: checkpoint.commitLogPosition, logger: logger
                )
                if Int64(index.queueCount) == checkpoint.queueCount {
                    loaded = index
                    replayFrom = checkpoint.commitLogPosition
                } else {
                    logger.error("queue index disagrees with its checkpoint; rebuilding it from the commit log",
                                 metadata: ["indexQueues": "\(index.queueCount)", "checkpointQueues": "\(checkpoint.queueCount)"])
                }
            } catch let error as LMQStoreError {
                if case .unsupportedFormat = error { throw error }
                logger.error("queue index unreadable; rebuilding it from the commit log", metadata: ["error": "\(error)"])
            }
        } else if checkpoint != nil {
            logger.error("commit log ends before the checkpoint; rebuilding the queue index from the commit log")
        }
        if loaded == nil {
            try LMQIndex.removeAll(directory: root + "/index")
        }
        let index = try loaded ?? LMQIndex(directory: root + "/index", fileSize: configuration.indexFileSizeBytes, allocationEnd: 0, validBelow: 0, logger: logger)

        // Index what the checkpoint does not cover.
        var replayed = 0
        let limits = configuration.limits
        try commitLog.forEachRecord(from: replayFrom) { position, bytes in
            for queueOffset in try CommitLogRecord.decodeQueueOffsets(bytes) {
                let identifier = try index.identifierCreatingIfNeeded(queueOffset.queue, firstOffset: queueOffset.offset, limits: limits)
                guard queueOffset.offset >= index.nextOffset(of: identifier) else { continue }
                try index.reserveSlot(queue: identifier, offset: queueOffset.offset)
                index.writeEntry(queue: identifier, offset: queueOffset.offset, position: position, size: bytes.count)
            }
            replayed += 1
        }
        self.commitLog = commitLog
        self.index = index
        flushedPosition = commitLog.writePosition
        let elapsedMillis = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        logger.info("store opened", metadata: [
            "path": "\(root)", "queues": "\(index.queueCount)", "commitLogBytes": "\(commitLog.writePosition - commitLog.minPosition)",
            "replayedRecords": "\(replayed)", "fromCheckpoint": "\(loaded != nil)", "millis": "\(Int(elapsedMillis))",
        ])
        try writeCheckpoint()
        let thread = Thread { [self] in runFlusher() }
        thread.name = "lmq-flusher"
        thread.start()
        guard configuration.prefaultCommitLog else { return }
        prefaulter = CommitLogPrefaulter(tail: { [weak self] in
            guard let self else { return nil }
            return self.lock.withLock {
                guard !self.isClosed, let last = self.commitLog.segments.last else { return nil }
                return (last.file, last.basePosition, self.commitLog.writePosition)
            }
        }, logger: logger)
    }

    // MARK: Appending

    /// Writes `message` once and dispatches it to every queue in `queues` (duplicates ignored),
    /// returning the offset it got in each. Completes per the flush policy: at once under ASYNC_FLUSH,
    /// once on disk under SYNC_FLUSH.
    public func append(_ message: LMQMessage, to queues: [String]) async throws -> AppendResult {
        let sync = configuration.flushDiskType == .syncFlush
        // Counted from here until the append waits for the flusher, so the flusher's group commit can
        // gather appends that are past the lock but not waiting yet.
        if sync { flushCondition.withLock { appendsInProgress += 1 } }
        let pending: PendingAppend
        do {
            pending = try write(message, to: queues)
        } catch {
            if sync {
                flushCondition.withLock {
                    appendsInProgress -= 1
                    flushCondition.signal()
                }
            }
            throw error
        }
        if sync {
            try await waitUntilFlushed(pending.endPosition, registeringAppend: true)
        }
        return pending.result
    }

    /// An append that is written (readable, dispatched, in the page cache) but under SYNC_FLUSH not
    /// necessarily on disk yet: see `waitUntilDurable(_:)`.
    public struct PendingAppend: Sendable, Hashable {
        public var result: AppendResult
        /// Where the record ends in the commit log: durable once the flusher has synced past it.
        let endPosition: Int64
    }

    /// The first half of `append`, synchronous: writes `message` and dispatches it to `queues`, so that
    /// callers that must keep an order (one client's PUBLISHes) can write in that order without waiting
    /// for each sync, then wait for all of them together with `waitUntilDurable(_:)` (one group commit
    /// covers them). Takes the store's lock for about a record copy; a segment roll (a new file) can take
    /// longer.
    public func write(_ message: LMQMessage, to queues: [String]) throws -> PendingAppend {
        let queues = Self.uniqued(queues)
        let limits = configuration.limits
        guard !queues.isEmpty, queues.count <= limits.maxLMQsPerMessage else {
            throw LMQStoreError.invalidQueueList(count: queues.count, limit: limits.maxLMQsPerMessage)
        }
        for queue in queues where queue.isEmpty || queue.utf8.count > limits.maxLMQNameBytes {
            throw LMQStoreError.invalidQueueName(queue)
        }
        let prepared = try CommitLogRecord.prepare(message, queues: queues, limits: limits)
        let nowMillis = Self.nowMillis()
        var ready: [CheckedContinuation<Void, Error>] = []
        let (result, end, listeners) = try lock.withLock { () throws -> (AppendResult, Int64, [@Sendable ([QueueOffset]) -> Void]) in
            guard !isClosed else { throw LMQStoreError.closed }
            var identifiers: [UInt32] = []
            identifiers.reserveCapacity(queues.count)
            for queue in queues {
                let identifier = try index.identifierCreatingIfNeeded(queue, limits: limits)
                try index.reserveSlot(queue: identifier, offset: index.nextOffset(of: identifier))
                identifiers.append(identifier)
            }
            let offsets = identifiers.map { index.nextOffset(of: $0) }
            let (segment, offsetInSegment, position) = try commitLog.reserve(size: prepared.size, nowMillis: nowMillis)
            CommitLogRecord.write(prepared, offsets: offsets, timestampMillis: nowMillis, to: segment.file.base + offsetInSegment)
            var queueOffsets: [QueueOffset] = []
            queueOffsets.reserveCapacity(queues.count)
            for (identifier, (queue, offset)) in zip(identifiers, zip(queues, offsets)) {
                index.writeEntry(queue: identifier, offset: offset, position: position, size: prepared.size)
                queueOffsets.append(QueueOffset(queue: queue, offset: offset))
                if !queueWaiters.isEmpty, var waiters = queueWaiters[queue] {
                    waiters.removeAll { waiter in
                        guard waiter.afterOffset < offset + 1 else { return false }
                        ready.append(waiter.continuation)
                        return true
                    }
                    queueWaiters[queue] = waiters.isEmpty ? nil : waiters
                }
            }
            let result = AppendResult(commitLogPosition: position, queueOffsets: queueOffsets, storeTimestampMillis: nowMillis)
            return (result, position + Int64(prepared.size), self.listeners.isEmpty ? [] : Array(self.listeners.values))
        }
        for continuation in ready { continuation.resume() }
        for listener in listeners { listener(result.queueOffsets) }
        return PendingAppend(result: result, endPosition: end)
    }

    /// Returns once `pending` is durable per the flush policy: at once under ASYNC_FLUSH, once synced
    /// under SYNC_FLUSH.
    public func waitUntilDurable(_ pending: PendingAppend) async throws {
        guard configuration.flushDiskType == .syncFlush else { return }
        try await waitUntilFlushed(pending.endPosition, registeringAppend: false)
    }

    private static func uniqued(_ queues: [String]) -> [String] {
        // Linear for the usual handful of queues: cheaper than hashing every name into a set.
        if queues.count <= 32 {
            var result: [String] = []
            for queue in queues where !result.contains(queue) { result.append(queue) }
            return result
        }
        var seen = Set<String>()
        return queues.filter { seen.insert($0).inserted }
    }

    // MARK: Reading

    /// Reads up to `maxMessages` messages (and about `maxBytes`; at least one) of `queue` from `offset`.
    public func read(queue: String, from offset: Int64, maxMessages: Int = 32, maxBytes: Int = 1024 * 1024) throws -> LMQReadResult {
        typealias Planned = (offset: Int64, position: Int64, segment: CommitLogSegment)
        enum Plan {
            case done(LMQReadResult)
            case read(entries: [Planned], next: Int64, min: Int64, max: Int64)
        }
        let plan = try lock.withLock { () throws -> Plan in
            guard !isClosed else { throw LMQStoreError.closed }
            guard let identifier = index.identifier(of: queue) else {
                return .done(LMQReadResult(status: .noNewMessages, messages: [], nextOffset: 0, minOffset: 0, maxOffset: 0))
            }
            let state = index.queue(identifier)
            let maxOffset = state.nextOffset
            let firstOffset = state.older.first?.firstOffset ?? state.tail.firstOffset
            let minPosition = commitLog.minPosition
            var cursor = offset
            if offset < firstOffset || (index.entry(queue: identifier, offset: offset).map { $0.position < minPosition } ?? false) {
                let minOffset = index.firstLiveOffset(queue: identifier, minPosition: minPosition)
                if offset < minOffset {
                    return .done(LMQReadResult(status: .offsetMovedForward, messages: [], nextOffset: minOffset, minOffset: minOffset, maxOffset: maxOffset))
                }
                cursor = max(cursor, minOffset)
            }
            guard offset <= maxOffset else {
                return .done(LMQReadResult(status: .offsetPastEnd, messages: [], nextOffset: maxOffset, minOffset: firstOffset, maxOffset: maxOffset))
            }
            var entries: [Planned] = []
            var bytes = 0
            while cursor < maxOffset && entries.count < maxMessages {
                guard let entry = index.entry(queue: identifier, offset: cursor) else {
                    cursor = index.nextBlockStart(queue: identifier, after: cursor)
                    continue
                }
                if !entries.isEmpty && bytes + entry.size > maxBytes { break }
                if let segment = commitLog.segment(containing: entry.position) {
                    entries.append((cursor, entry.position, segment))
                    bytes += entry.size
                }
                cursor += 1
            }
            return .read(entries: entries, next: cursor, min: firstOffset, max: maxOffset)
        }
        switch plan {
        case .done(let result):
            return result
        case .read(let entries, let next, let min, let max):
            var messages: [LMQReadResult.Message] = []
            messages.reserveCapacity(entries.count)
            for entry in entries {
                if let decoded = decodedRecords.message(at: entry.position) {
                    messages.append(.init(offset: entry.offset, message: decoded))
                    continue
                }
                // Records are immutable once written, so they are decoded outside the lock; the segment
                // reference keeps the mapping alive even if retention deletes the file meanwhile.
                guard let bytes = CommitLog.record(at: entry.position, in: entry.segment, logger: logger) else { continue }
                let decoded = try CommitLogRecord.decode(bytes, position: entry.position)
                decodedRecords.insert(decoded, at: entry.position)
                messages.append(.init(offset: entry.offset, message: decoded))
            }
            let status: LMQReadResult.Status = messages.isEmpty ? .noNewMessages : .found
            return LMQReadResult(status: status, messages: messages, nextOffset: next, minOffset: min, maxOffset: max)
        }
    }

    /// The offset the next message of `queue` will get (RocketMQ's max offset); 0 for an unknown queue.
    public func maxOffset(queue: String) -> Int64 {
        lock.withLock { index.identifier(of: queue).map { index.nextOffset(of: $0) } ?? 0 }
    }

    /// The lowest offset of `queue` that can still be read.
    public func minOffset(queue: String) -> Int64 {
        lock.withLock {
            guard let identifier = index.identifier(of: queue) else { return 0 }
            return index.firstLiveOffset(queue: identifier, minPosition: commitLog.minPosition)
        }
    }

    /// The number of queues.
    public var queueCount: Int { lock.withLock { index.queueCount } }

    /// The commit log's extent: the lowest position still held and where the next record goes.
    public var commitLogRange: Range<Int64> { lock.withLock { commitLog.minPosition..<commitLog.writePosition } }

    // MARK: Arrival notification

    /// Returns once `queue` has a message past `offset` (its max offset exceeds `offset`). Throws
    /// `CancellationError` if the task is cancelled and `.closed` when the store closes.
    public func waitForMessages(queue: String, after offset: Int64) async throws {
        let id = lock.withLock { () -> UInt64 in
            nextWaiterID += 1
            return nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                let immediate: Error?? = lock.withLock {
                    if isClosed { return .some(LMQStoreError.closed) }
                    if Task.isCancelled { return .some(CancellationError()) }
                    if let identifier = index.identifier(of: queue), index.nextOffset(of: identifier) > offset { return .some(nil) }
                    queueWaiters[queue, default: []].append(QueueWaiter(id: id, afterOffset: offset, continuation: continuation))
                    return nil
                }
                switch immediate {
                case .none: break
                case .some(.none): continuation.resume()
                case .some(.some(let error)): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let continuation = lock.withLock { () -> CheckedContinuation<Void, Error>? in
                guard var waiters = queueWaiters[queue], let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = waiters.remove(at: index)
                queueWaiters[queue] = waiters.isEmpty ? nil : waiters
                return waiter.continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Registers `listener` to be called after every append with the queues the message went to and its
    /// offsets there. It runs on the appending thread: keep it short (hand work to an event loop).
    public func addArrivalListener(_ listener: @escaping @Sendable ([QueueOffset]) -> Void) -> UInt64 {
        lock.withLock {
            nextWaiterID += 1
            listeners[nextWaiterID] = listener
            return nextWaiterID
        }
    }

    public func removeArrivalListener(_ id: UInt64) {
        lock.withLock { _ = listeners.removeValue(forKey: id) }
    }

    // MARK: Durability

    private func waitUntilFlushed(_ position: Int64, registeringAppend: Bool) async throws {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, Error>) in
            flushCondition.lock()
            defer { flushCondition.unlock() }
            if registeringAppend { appendsInProgress -= 1 }
            if let flusherFailure {
                continuation.resume(throwing: flusherFailure)
            } else if flushedPosition >= position {
                continuation.resume()
            } else {
                // Wake the flusher only when it waits for this: it is idle (no waiters yet), or it gathers
                // appends in progress and this was the last one. Otherwise it is syncing and looks at the
                // waiters when done; a signal per append would wake it hundreds of times per sync.
                let flusherIdle = syncWaiters.isEmpty
                syncWaiters.append((position, continuation))
                if flusherIdle || (registeringAppend && appendsInProgress == 0) {
                    flushCondition.signal()
                }
            }
        }
    }

    /// Syncs the commit log and the index and writes a checkpoint (recovery replays from here).
    public func checkpoint() throws {
        try flush()
        try writeCheckpoint()
    }

    /// The flusher: group commit under SYNC_FLUSH, a periodic sync under ASYNC_FLUSH, checkpoints and retention.
    private func runFlusher() {
        let sync = configuration.flushDiskType == .syncFlush
        let flushInterval = Double(configuration.flushIntervalCommitLogMillis) / 1000
        var nextFlush = Date(timeIntervalSinceNow: flushInterval)
        var nextCheckpoint = Date(timeIntervalSinceNow: Double(configuration.checkpointIntervalMillis) / 1000)
        var nextRetention = Date(timeIntervalSinceNow: Double(configuration.retentionCheckIntervalMillis) / 1000)
        flushCondition.lock()
        while true {
            let stopping = flusherStopping
            let deadline = sync ? min(nextCheckpoint, nextRetention) : min(nextFlush, nextCheckpoint, nextRetention)
            if !stopping && (sync ? syncWaiters.isEmpty : true) && Date() < deadline {
                _ = flushCondition.wait(until: deadline)
                continue
            }
            let hasWaiters = !syncWaiters.isEmpty
            if hasWaiters && !stopping {
                // Group commit: appends already past the writer lock are about to wait too; give them a
                // moment (bounded) so one sync covers them, instead of syncing a batch of one.
                let gatherDeadline = Date(timeIntervalSinceNow: Self.groupCommitGatherSeconds)
                while appendsInProgress > 0 && Date() < gatherDeadline {
                    _ = flushCondition.wait(until: gatherDeadline)
                }
            }
            flushCondition.unlock()
            let now = Date()
            do {
                if !sync || hasWaiters || stopping || now >= nextFlush {
                    try flush()
                    nextFlush = now.addingTimeInterval(flushInterval)
                }
                if stopping || now >= nextCheckpoint {
                    try writeCheckpoint()
                    nextCheckpoint = now.addingTimeInterval(Double(configuration.checkpointIntervalMillis) / 1000)
                }
                if !stopping && now >= nextRetention {
                    try runRetention(nowMillis: Self.nowMillis())
                    nextRetention = now.addingTimeInterval(Double(configuration.retentionCheckIntervalMillis) / 1000)
                }
            } catch {
                logger.critical("store flusher failed; appends waiting for disk will fail", metadata: ["error": "\(error)"])
                flushCondition.lock()
                flusherFailure = error
                let waiters = syncWaiters
                syncWaiters = []
                flushCondition.unlock()
                for waiter in waiters { waiter.continuation.resume(throwing: error) }
                flushCondition.lock()
                if stopping { break }
                continue
            }
            flushCondition.lock()
            if stopping { break }
        }
        flusherFinished = true
        flushCondition.broadcast()
        flushCondition.unlock()
    }

    /// Syncs the commit log up to its current end and completes the appends waiting for it.
    private func flush() throws {
        let (segments, target) = lock.withLock { (commitLog.segments, commitLog.writePosition) }
        let start = flushCondition.withLock { flushedPosition }
        if target > start {
            try CommitLog.sync(segments, start..<target)
        }
        var ready: [UnsafeContinuation<Void, Error>] = []
        flushCondition.withLock {
            flushedPosition = max(flushedPosition, target)
            syncWaiters.removeAll { waiter in
                guard waiter.position <= flushedPosition else { return false }
                ready.append(waiter.continuation)
                return true
            }
        }
        for continuation in ready { continuation.resume() }
    }

    private func writeCheckpoint() throws {
        try checkpointLock.withLock { try writeCheckpointLocked() }
    }

    private func writeCheckpointLocked() throws {
        let (segments, files, checkpoint) = lock.withLock {
            (commitLog.segments, index.files, Checkpoint(
                commitLogPosition: commitLog.writePosition, indexAllocationEnd: index.allocationEnd,
                queueCount: Int64(index.queueCount), writtenAtMillis: Self.nowMillis()
            ))
        }
        guard checkpoint.commitLogPosition != lastCheckpoint?.commitLogPosition || checkpoint.queueCount != lastCheckpoint?.queueCount else { return }
        // Order matters: the records and their index entries must be on disk before the checkpoint says so.
        try CommitLog.sync(segments, (segments.first?.basePosition ?? 0)..<checkpoint.commitLogPosition)
        try LMQIndex.sync(files)
        try checkpoint.write(path: checkpointPath)
        lastCheckpoint = checkpoint
    }

    /// Deletes commit-log segments whose newest message is older than `fileReservedTime`, and the oldest
    /// ones while the log is over its size budget. Queues skip entries pointing below the new start.
    @discardableResult
    public func runRetention(nowMillis: Int64) throws -> [Int64] {
        let reservedMillis = Int64(configuration.fileReservedTimeHours) * 3_600_000
        let deleted = try lock.withLock {
            let segments = commitLog.segments
            var usage = commitLog.diskUsageBytes
            return try commitLog.deleteSegments { segment in
                // A segment's newest message is no newer than the next segment's creation.
                let next = segments.first { $0.basePosition == segment.endPosition }
                let expired = next.map { nowMillis - $0.createdMillis > reservedMillis } ?? false
                let overBudget = configuration.maxCommitLogBytes.map { usage > $0 } ?? false
                if expired || overBudget {
                    usage -= segment.size
                    return true
                }
                return false
            }
        }
        if !deleted.isEmpty {
            logger.info("retention deleted commit-log segments", metadata: ["basePositions": "\(deleted)"])
        }
        return deleted
    }

    /// Stops the flusher after a final sync and checkpoint, and fails pending waiters with `.closed`.
    public func close() throws {
        let waiters = lock.withLock { () -> [QueueWaiter] in
            isClosed = true
            let all = queueWaiters.values.flatMap { $0 }
            queueWaiters = [:]
            return all
        }
        for waiter in waiters { waiter.continuation.resume(throwing: LMQStoreError.closed) }
        prefaulter?.stop()
        flushCondition.lock()
        flusherStopping = true
        flushCondition.broadcast()
        while !flusherFinished { flushCondition.wait() }
        let failure = flusherFailure
        flushCondition.unlock()
        if let failure { throw failure }
    }

    static func nowMillis() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

/// What a read found.
public struct LMQReadResult: Sendable, Hashable {
    public enum Status: Sendable, Hashable {
        /// At least one message.
        case found
        /// Nothing past the offset yet: wait with `waitForMessages` and read again.
        case noNewMessages
        /// The offset is below the queue's minimum (retention deleted it): read again from `nextOffset`.
        case offsetMovedForward
        /// The offset is past the queue's end; `nextOffset` is the end.
        case offsetPastEnd
    }

    public struct Message: Sendable, Hashable {
        public var offset: Int64
        public var message: StoredMessage

        public init(offset: Int64, message: StoredMessage) {
            self.offset = offset
            self.message = message
        }
    }

    public var status: Status
    public var messages: [Message]
    /// Where to read next.
    public var nextOffset: Int64
    public var minOffset: Int64
    public var maxOffset: Int64

    public init(status: Status, messages: [Message], nextOffset: Int64, minOffset: Int64, maxOffset: Int64) {
        self.status = status
        self.messages = messages
        self.nextOffset = nextOffset
        self.minOffset = minOffset
        self.maxOffset = maxOffset
    }
}

extension NSCondition {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
