import Foundation
import Logging

/// Keeps the pages just ahead of the commit log's write position populated, on a thread of its own, so
/// that appends do not take the page faults — and the kernel's zeroing of every new page — themselves
/// (what RocketMQ's mapped-file warm-up does). It asks the kernel with `madvise(MADV_POPULATE_WRITE)`
/// (Linux 5.14+), which faults the pages in as a write would without touching their contents, so it is
/// safe while appends write into the same pages. On a kernel without it, it logs once and stops.
///
/// Only the last segment is populated (the next one does not exist until an append rolls over to it),
/// up to `windowBytes` ahead of the write position.
///
/// `@unchecked Sendable`: the thread's state is guarded by `condition`; `populatedUpTo` is touched by the
/// thread alone.
final class CommitLogPrefaulter: @unchecked Sendable {
    /// Where the log is written now: the last segment's file, its first position and the write position.
    typealias Tail = @Sendable () -> (file: MappedFile, basePosition: Int64, writePosition: Int64)?

    /// How far ahead of the write position pages are populated: at a few hundred MB/s of appends, the
    /// thread's 5 ms wake-ups stay far ahead of the writer.
    static let windowBytes: Int64 = 32 * 1024 * 1024
    /// One `madvise` call at a time, so `stop()` is never kept waiting long.
    static let chunkBytes: Int64 = 2 * 1024 * 1024
    static let wakeInterval: TimeInterval = 0.005
    /// `MADV_POPULATE_WRITE` from linux/mman.h (not in every libc's headers).
    static let populateWrite: Int32 = 23

    private let tail: Tail
    private let logger: Logger
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var populatedUpTo: Int64 = 0
    private var populatedFile: ObjectIdentifier?

    init(tail: @escaping Tail, logger: Logger) {
        self.tail = tail
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "lmq-prefault"
        thread.start()
    }

    /// Stops the thread and waits for it.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        defer {
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))
        while true {
            condition.lock()
            if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: Self.wakeInterval)) }
            let stop = stopping
            condition.unlock()
            if stop { return }
            guard let (file, basePosition, writePosition) = tail() else { continue }
            if populatedFile != ObjectIdentifier(file) {
                populatedFile = ObjectIdentifier(file)
                populatedUpTo = basePosition
            }
            let fileEnd = basePosition + Int64(file.size)
            let target = min(fileEnd, writePosition + Self.windowBytes)
            var start = max(populatedUpTo, writePosition) / pageSize * pageSize
            while start < target {
                let length = min(Self.chunkBytes, target - start)
                let address = file.base + Int(start - basePosition)
                if madvise(address, Int(length), Self.populateWrite) != 0 {
                    let error = errno
                    if error == EINVAL || error == ENOSYS {
                        logger.info("commit log prefaulting unavailable on this kernel (MADV_POPULATE_WRITE); appends fault their pages in")
                        return
                    }
                    // ENOMEM, EFAULT, EINTR...: try again on the next wake-up.
                    break
                }
                start += length
                populatedUpTo = start
                condition.lock()
                let stop = stopping
                condition.unlock()
                if stop { return }
            }
        }
    }
}
