#if canImport(Glibc)
import Glibc
#endif
import Logging

/// One file of the commit log: a 64-byte header, then records back to back.
///
/// ```
/// 0   u64  magic "LMQCLOG\0"
/// 8   u32  format version (1)
/// 12  u32  header size (64)
/// 16  u64  segment size in bytes
/// 24  i64  base position: the global commit-log position of this file's byte 0
/// 32  i64  creation time, ms since the epoch
/// 40  u32  CRC-32C of bytes [0, 40)
/// ```
final class CommitLogSegment: @unchecked Sendable {  // immutable after init; bytes are guarded by the store's lock
    static let magic: UInt64 = 0x0047_4F4C_4351_4D4C  // "LMQCLOG\0"
    static let formatVersion: UInt32 = 1
    static let headerSize = 64

    let basePosition: Int64
    let createdMillis: Int64
    let file: MappedFile

    var size: Int { file.size }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: file.base, count: file.size) }
    var endPosition: Int64 { basePosition + Int64(file.size) }

    private init(basePosition: Int64, createdMillis: Int64, file: MappedFile) {
        self.basePosition = basePosition
        self.createdMillis = createdMillis
        self.file = file
    }

    static func fileName(for basePosition: Int64) -> String {
        let digits = String(basePosition)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    static func create(directory: String, basePosition: Int64, size: Int, nowMillis: Int64) throws(LMQStoreError) -> CommitLogSegment {
        let file = try MappedFile.create(path: directory + "/" + fileName(for: basePosition), size: size) { base in
            var writer = RawWriter(base: base)
            writer.write(magic)
            writer.write(formatVersion)
            writer.write(UInt32(headerSize))
            writer.write(UInt64(size))
            writer.write(basePosition)
            writer.write(nowMillis)
            writer.write(CRC32C.checksum(UnsafeRawBufferPointer(start: base, count: 40)))
            return headerSize
        }
        return CommitLogSegment(basePosition: basePosition, createdMillis: nowMillis, file: file)
    }

    static func open(path: String) throws(LMQStoreError) -> CommitLogSegment {
        let file = try MappedFile.open(path: path)
        let bytes = UnsafeRawBufferPointer(start: file.base, count: file.size)
        guard file.size >= headerSize, bytes.loadUnaligned(as: UInt64.self).littleEndian == magic else {
            throw .notAStoreFile(path: path)
        }
        let version = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        guard version == formatVersion else { throw .unsupportedFormat(path: path, found: version, supported: formatVersion) }
        let crc = bytes.loadUnaligned(fromByteOffset: 40, as: UInt32.self).littleEndian
        guard crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<40])) else {
            throw .corrupt(path: path, position: 0, reason: "segment header checksum")
        }
        let size = Int(bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian)
        guard size == file.size else { throw .corrupt(path: path, position: 16, reason: "header says \(size) bytes, file has \(file.size)") }
        return CommitLogSegment(
            basePosition: bytes.loadUnaligned(fromByteOffset: 24, as: Int64.self).littleEndian,
            createdMillis: bytes.loadUnaligned(fromByteOffset: 32, as: Int64.self).littleEndian,
            file: file
        )
    }
}

/// The append-only commit log: every message once, in arrival order, across fixed-size segment
/// files named by their base position (docs/store.md). Not thread-safe: the store calls it under its
/// writer lock; readers hold a segment reference, which keeps its mapping alive even if retention
/// deletes the file meanwhile.
final class CommitLog {
    let directory: String
    let segmentSize: Int
    private(set) var segments: [CommitLogSegment]
    /// Where the next record goes.
    private(set) var writePosition: Int64
    let logger: Logger

    /// The lowest position that may still hold a record.
    var minPosition: Int64 {
        guard let first = segments.first else { return writePosition }
        return first.basePosition + Int64(CommitLogSegment.headerSize)
    }

    /// Opens the log, checks every record from `recoverFrom` to the end, and truncates a torn or
    /// corrupt tail. Records before `recoverFrom` were synced and indexed before the last checkpoint.
    init(directory: String, segmentSize: Int, recoverFrom: Int64, logger: Logger) throws {
        self.directory = directory
        self.segmentSize = segmentSize
        self.logger = logger
        let allNames = try listDirectory(directory)
        MappedFile.removeTemporaryFiles(in: directory, names: allNames)
        let names = allNames.filter { $0.count == 20 && $0.allSatisfy(\.isNumber) }.sorted()
        var segments: [CommitLogSegment] = []
        for name in names {
            segments.append(try CommitLogSegment.open(path: directory + "/" + name))
        }
        self.segments = segments
        self.writePosition = segments.first.map { $0.basePosition + Int64(CommitLogSegment.headerSize) } ?? 0
        try recover(from: recoverFrom)
    }

    /// The segment holding `position`, if any.
    func segment(containing position: Int64) -> CommitLogSegment? {
        var low = 0
        var high = segments.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let segment = segments[middle]
            if position < segment.basePosition {
                high = middle - 1
            } else if position >= segment.endPosition {
                low = middle + 1
            } else {
                return segment
            }
        }
        return nil
    }

    /// Reserves `size` bytes for a record, rolling to a new segment when the current one is full,
    /// and returns where to write it.
    func reserve(size: Int, nowMillis: Int64) throws -> (segment: CommitLogSegment, offset: Int, position: Int64) {
        precondition(size <= segmentSize - CommitLogSegment.headerSize, "record larger than a segment")
        if let last = segments.last {
            let offset = Int(writePosition - last.basePosition)
            if offset + size <= last.size {
                writePosition += Int64(size)
                return (last, offset, last.basePosition + Int64(offset))
            }
            // Fill the rest of the segment so recovery knows to move on (a gap under 12 bytes stays zero).
            if last.size - offset >= 12 {
                var writer = RawWriter(base: last.file.base + offset)
                writer.write(CommitLogRecord.blankMagic)
                writer.write(UInt32(last.size - offset))
            }
        }
        let base = segments.last?.endPosition ?? 0
        let segment = try CommitLogSegment.create(directory: directory, basePosition: base, size: segmentSize, nowMillis: nowMillis)
        segments.append(segment)
        let offset = CommitLogSegment.headerSize
        writePosition = base + Int64(offset + size)
        return (segment, offset, base + Int64(offset))
    }

    /// The bytes of the intact record at `position` of `segment`, or nil if there is none (past the end,
    /// or failing its checksum — the last is logged). Needs no lock: records are immutable once written.
    static func record(at position: Int64, in segment: CommitLogSegment, logger: Logger) -> UnsafeRawBufferPointer? {
        let offset = Int(position - segment.basePosition)
        switch CommitLogRecord.scan(segment.bytes, at: offset) {
        case .record(let size):
            return UnsafeRawBufferPointer(rebasing: segment.bytes[offset..<(offset + size)])
        case .invalid(let reason):
            logger.error("commit log record unreadable", metadata: ["position": "\(position)", "reason": "\(reason)"])
            return nil
        case .blank, .end:
            return nil
        }
    }

    /// Calls `body` for every intact record from `position` to the end, in order.
    func forEachRecord(from position: Int64, _ body: (Int64, UnsafeRawBufferPointer) throws -> Void) rethrows {
        var position = max(position, minPosition)
        while position < writePosition, let segment = segment(containing: position) {
            let offset = max(Int(position - segment.basePosition), CommitLogSegment.headerSize)
            position = segment.basePosition + Int64(offset)
            switch CommitLogRecord.scan(segment.bytes, at: offset) {
            case .record(let size):
                try body(position, UnsafeRawBufferPointer(rebasing: segment.bytes[offset..<(offset + size)]))
                position += Int64(size)
            case .invalid:
                // Recovery kept the records after a damaged one; so does this walk.
                if let next = nextIntactRecord(in: segment, after: offset) {
                    position = segment.basePosition + Int64(next)
                } else {
                    position = segment.endPosition + Int64(CommitLogSegment.headerSize)
                }
            case .blank, .end:
                position = segment.endPosition + Int64(CommitLogSegment.headerSize)
            }
        }
    }

    /// Syncs everything written in `range` of global positions of `segments` (a snapshot taken under
    /// the store's lock, so the flusher can sync without holding it).
    static func sync(_ segments: [CommitLogSegment], _ range: Range<Int64>) throws {
        for segment in segments where segment.endPosition > range.lowerBound && segment.basePosition < range.upperBound {
            let start = Int(max(range.lowerBound, segment.basePosition) - segment.basePosition)
            let end = Int(min(range.upperBound, segment.endPosition) - segment.basePosition)
            try segment.file.sync(start..<end)
        }
    }

    /// Deletes whole segments, oldest first, while `shouldDelete` says so; never the one being written.
    /// Returns the deleted segments' base positions.
    func deleteSegments(while shouldDelete: (CommitLogSegment) -> Bool) throws -> [Int64] {
        var deleted: [Int64] = []
        while segments.count > 1, let first = segments.first, shouldDelete(first) {
            try first.file.delete()
            segments.removeFirst()
            deleted.append(first.basePosition)
        }
        if !deleted.isEmpty { try MappedFile.syncDirectory(of: directory + "/x") }
        return deleted
    }

    var diskUsageBytes: Int { segments.reduce(0) { $0 + $1.size } }

    // MARK: Recovery

    private func recover(from start: Int64) throws {
        guard !segments.isEmpty else {
            writePosition = 0
            return
        }
        var index = segments.firstIndex { $0.endPosition > start } ?? segments.count - 1
        var offset = max(CommitLogSegment.headerSize, Int(max(start, segments[index].basePosition) - segments[index].basePosition))
        while true {
            let segment = segments[index]
            switch CommitLogRecord.scan(segment.bytes, at: offset) {
            case .record(let size):
                offset += size
                continue
            case .blank:
                if index + 1 < segments.count {
                    index += 1
                    offset = CommitLogSegment.headerSize
                    continue
                }
                // A filled segment with no successor: the next append starts a new one.
                writePosition = segment.endPosition
                return
            case .end:
                // Zeroes to the end of the segment mean a gap too small for a blank filler.
                if index + 1 < segments.count, isZero(segment.bytes, from: offset) {
                    index += 1
                    offset = CommitLogSegment.headerSize
                    continue
                }
                try truncate(segmentIndex: index, offset: offset, reason: nil)
                return
            case .invalid(let reason):
                if let next = nextIntactRecord(in: segment, after: offset) {
                    // A damaged record with intact records after it: keep those, skip this one.
                    logger.error("commit log: skipping a damaged record", metadata: [
                        "position": "\(segment.basePosition + Int64(offset))", "reason": "\(reason)",
                        "skippedBytes": "\(next - offset)",
                    ])
                    offset = next
                    continue
                }
                try truncate(segmentIndex: index, offset: offset, reason: reason)
                return
            }
        }
    }

    /// If the size field of a damaged record still points at an intact record, where that record starts.
    private func nextIntactRecord(in segment: CommitLogSegment, after offset: Int) -> Int? {
        guard segment.size - offset >= 12 else { return nil }
        let size = Int(segment.bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian)
        guard size >= CommitLogRecord.minimumSize, offset + size < segment.size else { return nil }
        if case .record = CommitLogRecord.scan(segment.bytes, at: offset + size) { return offset + size }
        return nil
    }

    private func isZero(_ bytes: UnsafeRawBufferPointer, from offset: Int) -> Bool {
        Self.lastNonZeroByte(bytes, from: offset) == nil
    }

    /// The index of the last non-zero byte at or after `offset`. Word-at-a-time: the tail of a 1 GiB
    /// segment is scanned on every start, and pages a crash wrote out of order could be anywhere in it.
    static func lastNonZeroByte(_ bytes: UnsafeRawBufferPointer, from offset: Int) -> Int? {
        var last: Int?
        var index = offset
        while index < bytes.count && index % 8 != 0 {
            if bytes[index] != 0 { last = index }
            index += 1
        }
        while bytes.count - index >= 8 {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 {
                for byte in index..<(index + 8) where bytes[byte] != 0 { last = byte }
            }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] != 0 { last = index }
            index += 1
        }
        return last
    }

    /// Cuts the log at `offset` of segment `segmentIndex`: zeroes the rest of that segment and removes later ones.
    private func truncate(segmentIndex: Int, offset: Int, reason: String?) throws {
        let segment = segments[segmentIndex]
        var truncatedBytes = 0
        if let last = Self.lastNonZeroByte(segment.bytes, from: offset) {
            truncatedBytes = last - offset + 1
            memset(segment.file.base + offset, 0, truncatedBytes)
            try segment.file.sync(offset..<(last + 1))
        }
        for later in segments[(segmentIndex + 1)...] {
            truncatedBytes += later.size
            try later.file.delete()
        }
        segments.removeSubrange((segmentIndex + 1)...)
        writePosition = segment.basePosition + Int64(offset)
        if truncatedBytes > 0 {
            logger.warning("commit log: truncated a torn or corrupt tail", metadata: [
                "position": "\(writePosition)", "truncatedBytes": "\(truncatedBytes)", "reason": "\(reason ?? "non-zero bytes after the end")",
            ])
        }
    }
}

/// The names in a directory (creating it if missing).
func listDirectory(_ path: String) throws(LMQStoreError) -> [String] {
    try createDirectory(path)
    guard let directory = opendir(path) else { throw .errno("opendir", path) }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// `mkdir -p`.
func createDirectory(_ path: String) throws(LMQStoreError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o755) != 0 && Glibc.errno != EEXIST { throw .errno("mkdir", current) }
    }
}
