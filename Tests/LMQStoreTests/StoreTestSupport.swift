import Foundation
import LMQStore
import MQTTCore
import NIOCore

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ name: String = "lmqstore") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

extension LMQStore.Configuration {
    /// Small files so tests roll segments and index files quickly.
    static func testing(_ path: String, flush: FlushDiskType = .asyncFlush, segmentSize: Int = 1024 * 1024) -> Self {
        LMQStore.Configuration(
            storePathRootDir: path, flushDiskType: flush, flushIntervalCommitLogMillis: 20,
            mappedFileSizeCommitLog: segmentSize, indexFileSizeBytes: 256 * 1024, checkpointIntervalMillis: 100,
            limits: .init(maxMessageSizeBytes: min(segmentSize - 64, 4 * 1024 * 1024 + 64 * 1024))
        )
    }
}

func message(_ topic: String, _ text: String, qos: MQTTQoS = .atLeastOnce, id: UInt64 = 0) -> LMQMessage {
    LMQMessage(topic: topic, payload: ByteBuffer(string: text), qos: qos, messageId: id)
}

/// Reads a whole queue from `offset` to its end.
func readAll(_ store: LMQStore, _ queue: String, from offset: Int64 = 0) throws -> [LMQReadResult.Message] {
    var all: [LMQReadResult.Message] = []
    var next = offset
    while true {
        let result = try store.read(queue: queue, from: next, maxMessages: 256)
        if result.status == .offsetMovedForward {
            next = result.nextOffset
            continue
        }
        all += result.messages
        if result.nextOffset == next { break }
        next = result.nextOffset
    }
    return all
}
