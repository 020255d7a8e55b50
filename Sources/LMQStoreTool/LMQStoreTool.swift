import ArgumentParser
import Foundation
import LMQStore
import Logging
import MQTTCore
import NIOCore

/// Operator and test tool for an LMQ store directory: inspect it, append to it, measure it.
@main
struct LMQStoreTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lmqstore-tool",
        abstract: "Inspect, exercise and measure an LMQ store directory.",
        subcommands: [Stat.self, Read.self, CrashWriter.self, ManyQueues.self, Bench.self]
    )
}

struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The store directory (storePathRootDir).")
    var path: String

    @Option(name: .long, help: "ASYNC_FLUSH or SYNC_FLUSH.")
    var flush: String = "ASYNC_FLUSH"

    @Option(name: .long, help: "Commit-log segment size in bytes.")
    var segmentSize: Int = 1024 * 1024 * 1024

    @Option(name: .long, help: "Queue-index file size in bytes.")
    var indexFileSize: Int = 64 * 1024 * 1024

    func open(logLevel: Logger.Level = .info) throws -> LMQStore {
        guard let flushDiskType = FlushDiskType(rawValue: flush) else {
            throw ValidationError("--flush must be ASYNC_FLUSH or SYNC_FLUSH")
        }
        var logger = Logger(label: "lmqstore-tool")
        logger.logLevel = logLevel
        return try LMQStore(
            configuration: .init(
                storePathRootDir: path, flushDiskType: flushDiskType, mappedFileSizeCommitLog: segmentSize,
                indexFileSizeBytes: indexFileSize, limits: .init(maxMessageSizeBytes: min(segmentSize - 64, 4 * 1024 * 1024 + 64 * 1024))
            ),
            logger: logger
        )
    }
}

extension LMQStoreTool {
    struct Stat: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open the store (recovering it if needed) and print its queue count.")
        @OptionGroup var store: StoreOptions

        func run() throws {
            let store = try store.open()
            print("queues \(store.queueCount)")
            try store.close()
        }
    }

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the messages of one queue.")
        @OptionGroup var store: StoreOptions
        @Option(name: .shortAndLong, help: "The queue (LMQ) name.")
        var queue: String
        @Option(name: .long, help: "The first offset.")
        var from: Int64 = 0

        func run() throws {
            let store = try store.open()
            defer { try? store.close() }
            var next = from
            while true {
                let result = try store.read(queue: queue, from: next, maxMessages: 256)
                for entry in result.messages {
                    print("\(entry.offset)\t\(entry.message.message.topic)\t\(String(buffer: entry.message.message.payload))")
                }
                if result.nextOffset == next { break }
                next = result.nextOffset
            }
        }
    }

    /// Appends numbered messages and prints one line per completed append, so a test can SIGKILL it
    /// at any moment and check that everything acknowledged survived.
    struct CrashWriter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crash-writer",
            abstract: "Append messages, printing 'ack <id> <queue>:<offset>,...' after each completes."
        )
        @OptionGroup var store: StoreOptions
        @Option(name: .long, help: "The first message id.")
        var startID: Int = 0
        @Option(name: .long, help: "How many messages to append.")
        var count: Int = 100_000
        @Option(name: .long, help: "Concurrent appenders.")
        var concurrency: Int = 8

        func run() async throws {
            let store = try store.open(logLevel: .warning)
            emit("ready")
            let next = Counter(startID)
            let end = startID + count
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while let id = next.take(below: end) {
                            let result = try await store.append(Self.message(id), to: Self.queues(id))
                            let offsets = result.queueOffsets.map { "\($0.queue):\($0.offset)" }.joined(separator: ",")
                            emit("ack \(id) \(offsets)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            try store.close()
        }

        /// The message with id `id`: its payload encodes the id, so a reader can check it is intact.
        static func message(_ id: Int) -> LMQMessage {
            LMQMessage(topic: "crash/\(id % 10)", payload: ByteBuffer(string: "payload-\(id)-" + String(repeating: "z", count: id % 200)), qos: .atLeastOnce, messageId: UInt64(id))
        }

        /// Every message goes to "all", to one of 10 topic queues and to one of 3 wildcard queues.
        static func queues(_ id: Int) -> [String] {
            ["all", "%LMQ%crash%\(id % 10)%", "%LMQ%w\(id % 3)%"]
        }
    }
}

extension LMQStoreTool {
    /// Creates `count` queues (one message each, dispatched to `fanout` fresh queues at a time), reads every
    /// one back, reopens the store and reads them again: the scale check of one-directory-per-queue designs.
    struct ManyQueues: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "many-queues", abstract: "Create N queues, read each back, reopen, read again; print timings and memory."
        )
        @OptionGroup var store: StoreOptions
        @Option(name: .long, help: "How many queues.")
        var count: Int = 1_000_000
        @Option(name: .long, help: "Queues per message.")
        var fanout: Int = 4

        func run() async throws {
            let rssBefore = residentBytes()
            var clock = ContinuousClock.now
            var store = try self.store.open(logLevel: .warning)
            let payload = ByteBuffer(string: "m")
            var id = 0
            while id < count {
                let queues = (id..<min(id + fanout, count)).map { "%LMQ%many%\($0)%" }
                _ = try await store.append(LMQMessage(topic: "many/\(id)", payload: payload, messageId: UInt64(id)), to: queues)
                id += fanout
            }
            let created = ContinuousClock.now - clock
            let rssAfter = residentBytes()
            emit("created \(store.queueCount) queues in \(created); resident memory +\((rssAfter - rssBefore) / 1_048_576) MiB (\((rssAfter - rssBefore) / max(1, count)) bytes per queue)")
            clock = .now
            try readEach(store)
            emit("read each of \(count) queues back in \(ContinuousClock.now - clock)")
            try store.close()
            clock = .now
            store = try self.store.open(logLevel: .warning)
            emit("reopened with \(store.queueCount) queues in \(ContinuousClock.now - clock)")
            clock = .now
            try readEach(store)
            emit("read each of \(count) queues back after reopening in \(ContinuousClock.now - clock)")
            try store.close()
        }

        func readEach(_ store: LMQStore) throws {
            for index in 0..<count {
                let result = try store.read(queue: "%LMQ%many%\(index)%", from: 0, maxMessages: 1)
                guard result.messages.count == 1, result.messages[0].message.message.messageId == UInt64(index / fanout * fanout) else {
                    throw ValidationError("queue \(index) did not read back its message")
                }
            }
        }
    }
}

extension LMQStoreTool {
    /// Append and read throughput next to the raw sequential-write speed of the same disk, measured in the
    /// same run: a plain file written with the same record sizes, synced at the same cadence.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure append/read throughput against raw sequential writes; print a markdown table."
        )
        @Option(name: .long, help: "A scratch directory (emptied).")
        var path: String
        @Option(name: .long, help: "Messages per append run.")
        var messages: Int = 200_000
        @Option(name: .long, help: "Payload bytes.")
        var payload: Int = 256
        @Option(name: .long, parsing: .upToNextOption, help: "Queues per message to try.")
        var queuesPerMessage: [Int] = [1, 4, 16]
        @Option(name: .long, parsing: .upToNextOption, help: "Concurrent appenders to try under SYNC_FLUSH.")
        var appenders: [Int] = [1, 16, 256]
        @Flag(name: .long, help: "Let appends fault their commit-log pages in themselves (no prefault thread).")
        var noPrefault = false

        func run() async throws {
            emit("| run | messages/s | MB/s | vs raw |")
            emit("|---|---:|---:|---:|")
            let recordSize = try measureRecordSize(queues: 1)
            // Raw baselines: the disk's sequential write speed with the store's record size.
            let rawAsync = try rawWrite(records: messages, recordSize: recordSize, syncEvery: nil)
            emit(row("raw sequential write, \(recordSize) B records, one sync at the end", rawAsync, recordSize, nil))
            let rawSyncRecords = min(messages, 2_000)
            let rawSync = try rawWrite(records: rawSyncRecords, recordSize: recordSize, syncEvery: 1)
            emit(row("raw write + fdatasync per record (1 writer)", rawSync, recordSize, nil))
            let single = try await appendRun(flush: .asyncFlush, queues: 1, appenders: 1, count: messages)
            emit(row("append ASYNC_FLUSH, 1 LMQ/message, 1 appender", single, recordSize, rawAsync))
            for queues in queuesPerMessage {
                let size = try measureRecordSize(queues: queues)
                let rate = try await appendRun(flush: .asyncFlush, queues: queues, appenders: 16, count: messages)
                emit(row("append ASYNC_FLUSH, \(queues) LMQ/message, 16 appenders", rate, size, rawAsync))
            }
            for appenders in appenders {
                let count = appenders == 1 ? min(messages, 2_000) : min(messages, appenders * 400)
                let rate = try await appendRun(flush: .syncFlush, queues: 1, appenders: appenders, count: count)
                emit(row("append SYNC_FLUSH, 1 LMQ/message, \(appenders) appenders", rate, recordSize, appenders == 1 ? rawSync : rawAsync))
            }
            try await readRuns(recordSize: recordSize)
            if recoveryMegabytes > 0 { try await recoveryRun(recordSize: recordSize) }
        }

        @Option(name: .long, help: "Commit-log megabytes to write for the recovery measurement (0 skips it).")
        var recoveryMegabytes: Int = 1024

        /// Full recovery: no checkpoint and no index, so every record is checked (CRC) and indexed again.
        func recoveryRun(recordSize: Int) async throws {
            let directory = path + "/recovery"
            try? FileManager.default.removeItem(atPath: directory)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var store = try LMQStore(configuration: .init(storePathRootDir: directory), logger: quietLogger())
            let target = Int64(recoveryMegabytes) * 1_048_576
            var id = 0
            while store.commitLogRange.count < target {
                _ = try await store.append(makeMessage(id), to: queueNames(id, 1))
                id += 1
            }
            let bytes = store.commitLogRange.count
            try store.close()
            try FileManager.default.removeItem(atPath: directory + "/checkpoint")
            try FileManager.default.removeItem(atPath: directory + "/index")
            let start = ContinuousClock.now
            store = try LMQStore(configuration: .init(storePathRootDir: directory), logger: quietLogger())
            let seconds = (ContinuousClock.now - start).seconds
            try store.close()
            let perGiB = seconds / (Double(bytes) / 1_073_741_824)
            emit("| full recovery (no checkpoint, no index): \(id) records, \(bytes / 1_048_576) MiB | \(Int(Double(id) / seconds)) | \(String(format: "%.1f", Double(bytes) / 1_000_000 / seconds)) | \(String(format: "%.2f s per GiB", perGiB)) |")
        }

        func row(_ name: String, _ rate: Double, _ size: Int, _ baseline: Double?) -> String {
            let ratio = baseline.map { String(format: "%.2fx", $0 / rate) } ?? "—"
            return "| \(name) | \(Int(rate)) | \(String(format: "%.1f", rate * Double(size) / 1_000_000)) | \(ratio) |"
        }

        func makeMessage(_ id: Int) -> LMQMessage {
            LMQMessage(topic: "bench/\(id % 100)", payload: ByteBuffer(repeating: 0x61, count: payload), qos: .atLeastOnce, messageId: UInt64(id))
        }

        func queueNames(_ id: Int, _ count: Int) -> [String] {
            (0..<count).map { "%LMQ%bench%\(($0 * 7 + id) % 64)%" }
        }

        /// The size the store gives one record (measured by appending one).
        func measureRecordSize(queues: Int) throws -> Int {
            let directory = path + "/size"
            try? FileManager.default.removeItem(atPath: directory)
            let store = try LMQStore(configuration: .init(storePathRootDir: directory), logger: quietLogger())
            defer { try? store.close(); try? FileManager.default.removeItem(atPath: directory) }
            let before = store.commitLogRange.upperBound
            let semaphore = DispatchSemaphore(value: 0)
            let box = ResultBox()
            Task {
                do { _ = try await store.append(makeMessage(0), to: queueNames(0, queues)) } catch { box.error = error }
                semaphore.signal()
            }
            semaphore.wait()
            if let error = box.error { throw error }
            return Int(store.commitLogRange.upperBound - before)
        }

        func appendRun(flush: FlushDiskType, queues: Int, appenders: Int, count: Int) async throws -> Double {
            let directory = path + "/append"
            try? FileManager.default.removeItem(atPath: directory)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var configuration = LMQStore.Configuration(storePathRootDir: directory, flushDiskType: flush)
            configuration.prefaultCommitLog = !noPrefault
            let store = try LMQStore(configuration: configuration, logger: quietLogger())
            let next = Counter(0)
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<appenders {
                    group.addTask {
                        while let id = next.take(below: count) {
                            _ = try await store.append(makeMessage(id), to: queueNames(id, queues))
                        }
                    }
                }
                try await group.waitForAll()
            }
            try store.checkpoint()  // include the final sync in the time, as the raw run does
            let seconds = (ContinuousClock.now - start).seconds
            try store.close()
            return Double(count) / seconds
        }

        func readRuns(recordSize: Int) async throws {
            let directory = path + "/read"
            try? FileManager.default.removeItem(atPath: directory)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let store = try LMQStore(configuration: .init(storePathRootDir: directory), logger: quietLogger())
            defer { try? store.close() }
            let queueCount = 10_000
            for id in 0..<messages {
                _ = try await store.append(makeMessage(id), to: ["one", "%LMQ%many%\(id % queueCount)%"])
            }
            var start = ContinuousClock.now
            var next: Int64 = 0
            var read = 0
            while true {
                let result = try store.read(queue: "one", from: next, maxMessages: 256)
                read += result.messages.count
                if result.nextOffset == next { break }
                next = result.nextOffset
            }
            var rate = Double(read) / (ContinuousClock.now - start).seconds
            emit(row("read one LMQ sequentially, batches of 256", rate, recordSize, nil))
            start = .now
            read = 0
            var offsets = [Int64](repeating: 0, count: queueCount)
            var progressed = true
            while progressed {
                progressed = false
                for queue in 0..<queueCount {
                    let result = try store.read(queue: "%LMQ%many%\(queue)%", from: offsets[queue], maxMessages: 1)
                    if let message = result.messages.first {
                        offsets[queue] = message.offset + 1
                        read += 1
                        progressed = true
                    }
                }
            }
            rate = Double(read) / (ContinuousClock.now - start).seconds
            emit(row("read 10,000 LMQs round-robin, 1 message per read", rate, recordSize, nil))
        }

        /// Writes `records` records of `recordSize` bytes to a plain file with write(2), syncing every
        /// `syncEvery` records (nil: once at the end); returns records per second.
        func rawWrite(records: Int, recordSize: Int, syncEvery: Int?) throws -> Double {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let file = path + "/raw"
            unlink(file)
            defer { unlink(file) }
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw ValidationError("cannot create \(file)") }
            defer { close(fd) }
            let record = [UInt8](repeating: 0x61, count: recordSize)
            let start = ContinuousClock.now
            for index in 0..<records {
                _ = record.withUnsafeBytes { write(fd, $0.baseAddress, recordSize) }
                if let syncEvery, (index + 1) % syncEvery == 0 { fdatasync(fd) }
            }
            fdatasync(fd)
            return Double(records) / (ContinuousClock.now - start).seconds
        }
    }
}

final class ResultBox: @unchecked Sendable {  // written before the semaphore is signalled, read after
    var error: Error?
}

func quietLogger() -> Logger {
    var logger = Logger(label: "lmqstore-bench")
    logger.logLevel = .warning
    return logger
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// Writes one line straight to standard output (unbuffered: a SIGKILL must not eat acknowledged lines).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Hands out ids to concurrent appenders.
final class Counter: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value: Int
    init(_ value: Int) { self.value = value }
    func take(below end: Int) -> Int? {
        lock.withLock {
            guard value < end else { return nil }
            defer { value += 1 }
            return value
        }
    }
}
