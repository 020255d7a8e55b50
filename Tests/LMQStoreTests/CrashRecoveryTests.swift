import Foundation
import LMQStore
import MQTTCore
import NIOCore
import Testing

/// Crash safety for real: a child process appends under SYNC_FLUSH and prints each acknowledged
/// message; the test SIGKILLs it at random moments, reopens the store and checks that everything
/// acknowledged is there, intact, at the same offsets. Then it damages files on purpose.
@Suite("Crash recovery", .serialized)
struct CrashRecoveryTests {
    static let segmentSize = 256 * 1024
    static let indexFileSize = 64 * 1024

    /// The `lmqstore-tool` executable built beside the test bundle.
    static var toolPath: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("lmqstore-tool").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func configuration(_ path: String) -> LMQStore.Configuration {
        LMQStore.Configuration(
            storePathRootDir: path, flushDiskType: .syncFlush, mappedFileSizeCommitLog: segmentSize,
            indexFileSizeBytes: indexFileSize, limits: .init(maxMessageSizeBytes: segmentSize - 64)
        )
    }

    /// Runs the crash writer, kills it with SIGKILL after `killAfterMillis`, and returns the acknowledged
    /// appends: message id → the queue offsets the store reported.
    static func runAndKill(path: String, startID: Int, killAfterMillis: Int) throws -> [Int: [String: Int64]] {
        let tool = try #require(toolPath, "lmqstore-tool is not built next to the tests (swift build builds it)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [
            "crash-writer", "--path", path, "--flush", "SYNC_FLUSH", "--segment-size", "\(segmentSize)",
            "--index-file-size", "\(indexFileSize)", "--start-id", "\(startID)", "--count", "1000000", "--concurrency", "16",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Drain the pipe all the time (a full pipe would stall the writer and the kill would never land
        // mid-append); wait until it has opened the store, then let it run for a while.
        let collected = OutputCollector()
        let reader = output.fileHandleForReading
        let drain = Thread {
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                collected.append(chunk)
            }
            collected.finish()
        }
        drain.start()
        let deadline = Date().addingTimeInterval(30)
        while !collected.text.contains("ready\n") && Date() < deadline { usleep(5_000) }
        usleep(UInt32(killAfterMillis * 1000))
        kill(process.processIdentifier, SIGKILL)
        // Polled and bounded, not `waitUntilExit()`, which can wait for good: this test holds a thread of
        // the small cooperative pool meanwhile.
        let exitDeadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < exitDeadline { usleep(2_000) }
        collected.waitUntilFinished()
        let text = collected.text
        var acknowledged: [Int: [String: Int64]] = [:]
        // The last line may be cut short by the kill: only whole lines count.
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() where line.hasPrefix("ack ") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let id = Int(parts[1]) else { continue }
            var offsets: [String: Int64] = [:]
            for pair in parts[2].split(separator: ",") {
                guard let colon = pair.lastIndex(of: ":"), let offset = Int64(pair[pair.index(after: colon)...]) else { continue }
                offsets[String(pair[..<colon])] = offset
            }
            acknowledged[id] = offsets
        }
        return acknowledged
    }

    @Test("every append acknowledged under SYNC_FLUSH survives SIGKILL, intact and at the same offsets", .enabled(if: toolPath != nil))
    func sigkillDuringAppends() throws {
        let directory = TemporaryDirectory("crash")
        defer { directory.remove() }
        var acknowledged: [Int: [String: Int64]] = [:]
        var startID = 0
        var rng = SystemRandomNumberGenerator()
        for round in 0..<5 {
            let killAfter = Int.random(in: 100...600, using: &rng)
            let acked = try Self.runAndKill(path: directory.path, startID: startID, killAfterMillis: killAfter)
            #expect(!acked.isEmpty, "round \(round): the writer acknowledged nothing in \(killAfter) ms")
            print("crash recovery round \(round): killed after \(killAfter) ms with \(acked.count) appends acknowledged")
            acknowledged.merge(acked) { old, _ in old }
            startID = (acknowledged.keys.max() ?? 0) + 1_000

            let store = try LMQStore(configuration: Self.configuration(directory.path))
            let all = try readAll(store, "all")
            // Gap-free offsets in every queue after recovery.
            #expect(all.map(\.offset) == Array(0..<Int64(all.count)))
            var byID: [Int: LMQReadResult.Message] = [:]
            for entry in all { byID[Int(entry.message.message.messageId)] = entry }
            for (id, offsets) in acknowledged {
                guard let entry = byID[id] else {
                    Issue.record("round \(round): acknowledged message \(id) lost")
                    continue
                }
                let expected = LMQStoreTool_message(id)
                #expect(entry.message.message.payload == expected.payload, "message \(id) damaged")
                #expect(entry.offset == offsets["all"], "message \(id) moved in queue all")
                for (queue, offset) in offsets where queue != "all" {
                    let read = try store.read(queue: queue, from: offset, maxMessages: 1)
                    #expect(read.messages.first?.message.message.messageId == UInt64(id), "message \(id) not at \(queue):\(offset)")
                }
            }
            try store.close()
        }
        print("crash recovery: \(acknowledged.count) acknowledged appends over 5 SIGKILLs all recovered")
    }

    @Test("garbage after the last record is truncated and appends continue")
    func garbageTail() async throws {
        let directory = TemporaryDirectory("garbage")
        defer { directory.remove() }
        try await fill(directory.path, count: 50)
        let store = try LMQStore(configuration: Self.configuration(directory.path))
        let end = store.commitLogRange.upperBound
        try store.close()
        try patch(try lastSegment(directory.path), at: Int(end % Int64(Self.segmentSize)), with: [UInt8](repeating: 0xA5, count: 300))
        let reopened = try LMQStore(configuration: Self.configuration(directory.path))
        defer { try? reopened.close() }
        #expect(try readAll(reopened, "all").count == 50)
        let next = try await reopened.append(LMQStoreTool_message(999), to: ["all"])
        #expect(next.queueOffsets.first?.offset == 50)
    }

    @Test("a flipped byte in the last record (a torn write) removes only that record")
    func flippedByteInLastRecord() async throws {
        let directory = TemporaryDirectory("flip")
        defer { directory.remove() }
        try await fill(directory.path, count: 50)
        // Corrupt the last record, and make the checkpoint point before it so recovery checks it.
        let store = try LMQStore(configuration: Self.configuration(directory.path))
        let last = try store.read(queue: "all", from: 49).messages[0].message.commitLogPosition
        try store.close()
        try forgetCheckpoint(directory.path)
        try patch(try lastSegment(directory.path), at: Int(last % Int64(Self.segmentSize)) + 40, with: [0xFF])
        let reopened = try LMQStore(configuration: Self.configuration(directory.path))
        defer { try? reopened.close() }
        let all = try readAll(reopened, "all")
        #expect(all.count == 49)
        #expect(all.last?.message.message.messageId == 48)
    }

    @Test("a damaged record in the middle is skipped and the records after it are kept")
    func damagedMiddleRecord() async throws {
        let directory = TemporaryDirectory("middle")
        defer { directory.remove() }
        try await fill(directory.path, count: 50)
        let store = try LMQStore(configuration: Self.configuration(directory.path))
        let tenth = try store.read(queue: "all", from: 10).messages[0].message.commitLogPosition
        try store.close()
        try forgetCheckpoint(directory.path)
        try patch(try lastSegment(directory.path), at: Int(tenth % Int64(Self.segmentSize)) + 40, with: [0xFF])
        try removeIndex(directory.path)
        let reopened = try LMQStore(configuration: Self.configuration(directory.path))
        defer { try? reopened.close() }
        let ids = try readAll(reopened, "all").map { Int($0.message.message.messageId) }
        #expect(ids == Array(0..<10) + Array(11..<50))
    }

    @Test("a truncated or missing queue index is rebuilt from the commit log")
    func truncatedIndex() async throws {
        let directory = TemporaryDirectory("index")
        defer { directory.remove() }
        try await fill(directory.path, count: 300)
        let indexDirectory = directory.path + "/index"
        let files = try FileManager.default.contentsOfDirectory(atPath: indexDirectory).sorted()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: indexDirectory + "/" + files[0]))
        try handle.truncate(atOffset: 1000)
        try handle.close()
        var store = try LMQStore(configuration: Self.configuration(directory.path))
        #expect(try readAll(store, "all").map(\.offset) == Array(0..<300))
        #expect(store.maxOffset(queue: "%LMQ%crash%3%") == 30)
        try store.close()
        try removeIndex(directory.path)
        store = try LMQStore(configuration: Self.configuration(directory.path))
        #expect(try readAll(store, "%LMQ%w2%").count == 100)
        try store.close()
    }

    @Test("a file of an unknown format version is refused with a clear error")
    func unknownFormatVersion() async throws {
        let directory = TemporaryDirectory("version")
        defer { directory.remove() }
        try await fill(directory.path, count: 5)
        try patch(try lastSegment(directory.path), at: 8, with: [9, 0, 0, 0])
        #expect {
            _ = try LMQStore(configuration: Self.configuration(directory.path))
        } throws: { error in
            guard case LMQStoreError.unsupportedFormat(_, let found, let supported) = error else { return false }
            return found == 9 && supported == 1 && "\(error)".contains("refusing to start")
        }
    }

    // MARK: Helpers

    func fill(_ path: String, count: Int) async throws {
        let store = try LMQStore(configuration: Self.configuration(path))
        for id in 0..<count { _ = try await store.append(LMQStoreTool_message(id), to: LMQStoreTool_queues(id)) }
        try store.close()
    }

    func lastSegment(_ path: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: path + "/commitlog").sorted()
        return path + "/commitlog/" + names.last!
    }

    func patch(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        var data = try handle.read(upToCount: bytes.count) ?? Data()
        if bytes.count == 1 && data.count == 1 {
            data[0] ^= bytes[0]
        } else {
            data = Data(bytes)
        }
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: data)
        try handle.close()
    }

    /// Removes the checkpoint: recovery then verifies every record of the log and rebuilds the index,
    /// as after a crash before the first checkpoint.
    func forgetCheckpoint(_ path: String) throws {
        try FileManager.default.removeItem(atPath: path + "/checkpoint")
    }

    func removeIndex(_ path: String) throws {
        try FileManager.default.removeItem(atPath: path + "/index")
        try? FileManager.default.removeItem(atPath: path + "/checkpoint")
    }
}

/// Bytes read from the child, shared between the draining thread and the test.
final class OutputCollector: @unchecked Sendable {  // guarded by `condition`
    private let condition = NSCondition()
    private var data = Data()
    private var finished = false

    func append(_ chunk: Data) { condition.withLock { data.append(chunk) } }
    func finish() { condition.withLock { finished = true; condition.broadcast() } }
    var text: String { condition.withLock { String(decoding: data, as: UTF8.self) } }
    func waitUntilFinished() {
        condition.lock()
        while !finished { condition.wait() }
        condition.unlock()
    }
}

/// The crash writer's messages and queues (kept in step with `lmqstore-tool crash-writer`).
func LMQStoreTool_message(_ id: Int) -> LMQMessage {
    LMQMessage(topic: "crash/\(id % 10)", payload: ByteBuffer(string: "payload-\(id)-" + String(repeating: "z", count: id % 200)), qos: .atLeastOnce, messageId: UInt64(id))
}

func LMQStoreTool_queues(_ id: Int) -> [String] {
    ["all", "%LMQ%crash%\(id % 10)%", "%LMQ%w\(id % 3)%"]
}
