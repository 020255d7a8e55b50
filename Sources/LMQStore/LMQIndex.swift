#if canImport(Glibc)
import Glibc
#endif
import Logging

/// The queue index: for every light message queue, the commit-log position of each of its messages,
/// by queue offset — without a file or directory per queue (docs/store.md, "Queue index").
///
/// Each queue owns a chain of *blocks* in shared index files. A block holds a run of consecutive
/// offsets; its capacity grows 4, 16, 64, 256, 1024 entries, so an idle queue costs one ~100-byte
/// block on disk and a long queue reads its entries sequentially from a few large blocks. The first
/// block of a queue (HEAD) carries its name, so the index describes itself and is rebuilt on start by one
/// sequential scan. In memory a queue is its name, its next offset and its block list — about 150 bytes
/// for an idle queue.
///
/// Not thread-safe: the store calls it under its writer lock.
final class LMQIndex {
    static let fileMagic: UInt64 = 0x5845_444E_4951_4D4C  // "LMQINDEX"
    static let formatVersion: UInt32 = 1
    static let fileHeaderSize = 64
    static let headMagic: UInt32 = 0x4441_4548  // "HEAD"
    static let continuationMagic: UInt32 = 0x544E_4F43  // "CONT"
    static let blockHeaderSize = 32
    static let entrySize = 12
    static let maxBlockCapacity = 1024

    struct Block {
        /// Global index position of the block's first entry.
        var entriesPosition: Int64
        var firstOffset: Int64
        var capacity: Int32
    }

    struct Queue {
        var name: String
        /// The offset the next message gets.
        var nextOffset: Int64
        var tail: Block
        /// Earlier blocks in offset order; empty (and unallocated) for most queues.
        var older: [Block]
    }

    let directory: String
    let fileSize: Int
    let logger: Logger
    private(set) var files: [MappedFile] = []
    private(set) var queues: [Queue] = []
    private(set) var queueIdentifiers: [String: UInt32] = [:]
    /// Where the next block goes, as a global index position (file i covers [i * fileSize, (i + 1) * fileSize)).
    private(set) var allocationEnd: Int64

    /// Opens the index and loads every block below `allocationEnd` (from the checkpoint); entries
    /// pointing at or past `validBelow` (the checkpoint's commit-log position) are dropped, to be
    /// re-indexed from the commit log.
    init(directory: String, fileSize: Int, allocationEnd: Int64, validBelow: Int64, logger: Logger) throws {
        self.directory = directory
        self.fileSize = fileSize
        self.logger = logger
        self.allocationEnd = allocationEnd
        let allNames = try listDirectory(directory)
        MappedFile.removeTemporaryFiles(in: directory, names: allNames)
        let names = allNames.filter { $0.count == 20 && $0.allSatisfy(\.isNumber) }.sorted()
        for (number, name) in names.enumerated() {
            let path = directory + "/" + name
            guard Int64(name) == Int64(number) * Int64(fileSize) else {
                throw LMQStoreError.corrupt(path: path, position: 0, reason: "index file out of sequence")
            }
            let file = try MappedFile.open(path: path)
            try Self.checkHeader(file, fileSize: fileSize)
            files.append(file)
        }
        if allocationEnd == 0 {
            self.allocationEnd = Int64(Self.fileHeaderSize)
        }
        try load(validBelow: validBelow)
    }

    /// Deletes every index file (before a rebuild from the commit log).
    static func removeAll(directory: String) throws {
        for name in try listDirectory(directory) where name.count == 20 && name.allSatisfy(\.isNumber) {
            guard unlink(directory + "/" + name) == 0 else { throw LMQStoreError.errno("unlink", directory + "/" + name) }
        }
    }

    var queueCount: Int { queues.count }

    func identifier(of name: String) -> UInt32? { queueIdentifiers[name] }

    func queue(_ identifier: UInt32) -> Queue { queues[Int(identifier)] }

    /// The offset the next message of a queue gets (without copying the queue's state).
    func nextOffset(of identifier: UInt32) -> Int64 { queues[Int(identifier)].nextOffset }

    /// The identifier of queue `name`, creating it (its HEAD block) if new, starting at `firstOffset`.
    func identifierCreatingIfNeeded(_ name: String, firstOffset: Int64 = 0, limits: LMQStore.Limits) throws -> UInt32 {
        if let identifier = queueIdentifiers[name] { return identifier }
        guard queues.count < limits.maxLMQs else { throw LMQStoreError.tooManyQueues(limit: limits.maxLMQs) }
        let identifier = UInt32(queues.count)
        let block = try allocateBlock(magic: Self.headMagic, queue: identifier, firstOffset: firstOffset, capacity: 4, name: name)
        queues.append(Queue(name: name, nextOffset: firstOffset, tail: block, older: []))
        queueIdentifiers[name] = identifier
        return identifier
    }

    /// Makes sure queue `identifier` has room for an entry at `offset` (its next offset, or beyond it
    /// after a gap left by a record recovery had to skip), allocating a block if needed. Called before
    /// the record is written, so that writing the entry afterwards cannot fail.
    func reserveSlot(queue identifier: UInt32, offset: Int64) throws {
        let index = Int(identifier)
        let nextOffset = queues[index].nextOffset
        let tail = queues[index].tail
        precondition(offset >= nextOffset, "queue offsets only grow")
        guard offset - tail.firstOffset >= Int64(tail.capacity) || offset > nextOffset else { return }
        // A gap starts a small block; otherwise blocks grow 4x up to the maximum.
        let capacity = offset > nextOffset ? 4 : min(Int(tail.capacity) * 4, Self.maxBlockCapacity)
        let block = try allocateBlock(magic: Self.continuationMagic, queue: identifier, firstOffset: offset, capacity: capacity, name: nil)
        queues[index].older.append(tail)
        queues[index].tail = block
        queues[index].nextOffset = offset
    }

    /// Writes the entry for `offset`, reserved by `reserveSlot`, and advances the queue.
    func writeEntry(queue identifier: UInt32, offset: Int64, position: Int64, size: Int) {
        let index = Int(identifier)
        let tail = queues[index].tail
        precondition(offset == queues[index].nextOffset && offset - tail.firstOffset < Int64(tail.capacity), "entry without a reserved slot")
        let entry = pointer(at: tail.entriesPosition + (offset - tail.firstOffset) * Int64(Self.entrySize))
        entry.storeBytes(of: position.littleEndian, as: Int64.self)
        (entry + 8).storeBytes(of: UInt32(size).littleEndian, as: UInt32.self)
        queues[index].nextOffset = offset + 1
    }

    /// The commit-log position and size of `offset` in a queue, or nil if the index has no entry there.
    func entry(queue identifier: UInt32, offset: Int64) -> (position: Int64, size: Int)? {
        let queue = queues[Int(identifier)]
        guard offset < queue.nextOffset, let block = Self.block(of: queue, containing: offset) else { return nil }
        let entry = UnsafeRawPointer(pointer(at: block.entriesPosition + (offset - block.firstOffset) * Int64(Self.entrySize)))
        let position = Int64(littleEndian: entry.loadUnaligned(as: Int64.self))
        guard position != 0 else { return nil }
        return (position, Int(UInt32(littleEndian: (entry + 8).loadUnaligned(as: UInt32.self))))
    }

    /// The first offset of the first block that starts after `offset`, or the queue's next offset:
    /// where a reader continues when `offset` falls in a gap.
    func nextBlockStart(queue identifier: UInt32, after offset: Int64) -> Int64 {
        let queue = queues[Int(identifier)]
        if queue.tail.firstOffset > offset {
            return queue.older.first { $0.firstOffset > offset }?.firstOffset ?? queue.tail.firstOffset
        }
        return queue.nextOffset
    }

    /// The lowest offset a queue can still be read from: the first whose record is at or past
    /// `minPosition` (retention removes whole segments from the front), or its next offset if none is.
    func firstLiveOffset(queue identifier: UInt32, minPosition: Int64) -> Int64 {
        let queue = queues[Int(identifier)]
        let blocks = queue.older + [queue.tail]
        for (index, block) in blocks.enumerated() {
            let end = index + 1 < blocks.count
                ? min(block.firstOffset + Int64(block.capacity), blocks[index + 1].firstOffset)
                : queue.nextOffset
            // Positions grow with offsets: a block whose last entry is gone is gone entirely.
            if let last = entry(queue: identifier, offset: end - 1), last.position < minPosition { continue }
            var offset = block.firstOffset
            while offset < end {
                if let found = entry(queue: identifier, offset: offset), found.position >= minPosition { return offset }
                offset += 1
            }
        }
        return queue.nextOffset
    }

    static func block(of queue: Queue, containing offset: Int64) -> Block? {
        if offset >= queue.tail.firstOffset {
            return offset - queue.tail.firstOffset < Int64(queue.tail.capacity) ? queue.tail : nil
        }
        var low = 0
        var high = queue.older.count - 1
        var found: Block?
        while low <= high {
            let middle = (low + high) / 2
            if queue.older[middle].firstOffset <= offset {
                found = queue.older[middle]
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        guard let found, offset - found.firstOffset < Int64(found.capacity) else { return nil }
        return found
    }

    /// Syncs index files (a snapshot of `files` taken under the store's lock). Entries are written in
    /// place anywhere in the index, so every file is synced; only its dirty pages reach the disk.
    static func sync(_ files: [MappedFile]) throws {
        for file in files { try file.sync(0..<file.size) }
    }

    // MARK: Blocks

    private func pointer(at position: Int64) -> UnsafeMutableRawPointer {
        let number = Int(position / Int64(fileSize))
        return files[number].base + Int(position % Int64(fileSize))
    }

    private func allocateBlock(magic: UInt32, queue: UInt32, firstOffset: Int64, capacity: Int, name: String?) throws -> Block {
        let nameLength = name?.utf8.count ?? 0
        let paddedName = (nameLength + 7) / 8 * 8
        let size = Self.blockHeaderSize + paddedName + capacity * Self.entrySize
        precondition(size <= fileSize - Self.fileHeaderSize, "index block larger than an index file")
        var position = allocationEnd
        if Int(position % Int64(fileSize)) + size > fileSize {
            // Leave the rest of this file as zeroes (the loader moves on) and start the next one.
            position = (position / Int64(fileSize) + 1) * Int64(fileSize) + Int64(Self.fileHeaderSize)
        }
        let number = Int(position / Int64(fileSize))
        while files.count <= number {
            files.append(try createFile(number: files.count))
        }
        let start = pointer(at: position)
        memset(start, 0, size)
        var writer = RawWriter(base: start)
        writer.write(magic)
        writer.write(queue)
        writer.write(firstOffset)
        writer.write(UInt32(capacity))
        writer.write(UInt16(nameLength))
        writer.write(UInt16(0))
        if let name {
            writer.position = Self.blockHeaderSize
            var copy = name
            copy.withUTF8 { bytes in
                if let source = bytes.baseAddress { (start + Self.blockHeaderSize).copyMemory(from: source, byteCount: bytes.count) }
            }
        }
        var crc = CRC32C.checksum(UnsafeRawBufferPointer(start: start, count: 24))
        crc = CRC32C.checksum(UnsafeRawBufferPointer(start: start + Self.blockHeaderSize, count: nameLength), continuing: crc)
        (start + 24).storeBytes(of: crc.littleEndian, as: UInt32.self)
        allocationEnd = position + Int64(size)
        return Block(entriesPosition: position + Int64(Self.blockHeaderSize + paddedName), firstOffset: firstOffset, capacity: Int32(capacity))
    }

    private func createFile(number: Int) throws -> MappedFile {
        let base = Int64(number) * Int64(fileSize)
        let fileSize = self.fileSize
        return try MappedFile.create(path: directory + "/" + CommitLogSegment.fileName(for: base), size: fileSize) { start in
            var writer = RawWriter(base: start)
            writer.write(Self.fileMagic)
            writer.write(Self.formatVersion)
            writer.write(UInt32(Self.fileHeaderSize))
            writer.write(UInt64(fileSize))
            writer.write(base)
            writer.write(CRC32C.checksum(UnsafeRawBufferPointer(start: start, count: 32)))
            return Self.fileHeaderSize
        }
    }

    private static func checkHeader(_ file: MappedFile, fileSize: Int) throws {
        let bytes = UnsafeRawBufferPointer(start: file.base, count: file.size)
        guard file.size >= fileHeaderSize, bytes.loadUnaligned(as: UInt64.self).littleEndian == fileMagic else {
            throw LMQStoreError.notAStoreFile(path: file.path)
        }
        let version = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        guard version == formatVersion else { throw LMQStoreError.unsupportedFormat(path: file.path, found: version, supported: formatVersion) }
        guard bytes.loadUnaligned(fromByteOffset: 32, as: UInt32.self).littleEndian == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<32])),
              file.size == fileSize
        else {
            throw LMQStoreError.corrupt(path: file.path, position: 0, reason: "index file header")
        }
    }

    /// One sequential pass over the blocks below `allocationEnd`.
    private func load(validBelow: Int64) throws {
        var position = Int64(Self.fileHeaderSize)
        while position < allocationEnd {
            let number = Int(position / Int64(fileSize))
            guard number < files.count else {
                throw LMQStoreError.corrupt(path: directory, position: position, reason: "index file missing below the checkpoint")
            }
            let offsetInFile = Int(position % Int64(fileSize))
            let start = pointer(at: position)
            let raw = UnsafeRawPointer(start)
            let magic = offsetInFile + Self.blockHeaderSize <= fileSize ? UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)) : 0
            if magic == 0 {
                position = Int64(number + 1) * Int64(fileSize) + Int64(Self.fileHeaderSize)
                continue
            }
            let identifier = UInt32(littleEndian: (raw + 4).loadUnaligned(as: UInt32.self))
            let firstOffset = Int64(littleEndian: (raw + 8).loadUnaligned(as: Int64.self))
            let capacity = Int(UInt32(littleEndian: (raw + 16).loadUnaligned(as: UInt32.self)))
            let nameLength = Int(UInt16(littleEndian: (raw + 20).loadUnaligned(as: UInt16.self)))
            let paddedName = (nameLength + 7) / 8 * 8
            let size = Self.blockHeaderSize + paddedName + capacity * Self.entrySize
            guard capacity > 0, capacity <= Self.maxBlockCapacity, offsetInFile + size <= fileSize else {
                throw LMQStoreError.corrupt(path: files[number].path, position: position, reason: "index block size")
            }
            var crc = CRC32C.checksum(UnsafeRawBufferPointer(start: raw, count: 24))
            crc = CRC32C.checksum(UnsafeRawBufferPointer(start: raw + Self.blockHeaderSize, count: nameLength), continuing: crc)
            guard crc == UInt32(littleEndian: (raw + 24).loadUnaligned(as: UInt32.self)) else {
                throw LMQStoreError.corrupt(path: files[number].path, position: position, reason: "index block checksum")
            }
            let block = Block(entriesPosition: position + Int64(Self.blockHeaderSize + paddedName), firstOffset: firstOffset, capacity: Int32(capacity))
            switch magic {
            case Self.headMagic:
                guard identifier == UInt32(queues.count) else {
                    throw LMQStoreError.corrupt(path: files[number].path, position: position, reason: "queue \(identifier) out of order")
                }
                let name = String(decoding: UnsafeRawBufferPointer(start: raw + Self.blockHeaderSize, count: nameLength), as: UTF8.self)
                queues.append(Queue(name: name, nextOffset: firstOffset, tail: block, older: []))
                queueIdentifiers[name] = identifier
            case Self.continuationMagic:
                guard Int(identifier) < queues.count, firstOffset >= queues[Int(identifier)].nextOffset else {
                    throw LMQStoreError.corrupt(path: files[number].path, position: position, reason: "continuation block of queue \(identifier)")
                }
                queues[Int(identifier)].older.append(queues[Int(identifier)].tail)
                queues[Int(identifier)].tail = block
                queues[Int(identifier)].nextOffset = firstOffset
            default:
                throw LMQStoreError.corrupt(path: files[number].path, position: position, reason: "index block magic")
            }
            // Count the entries written before the checkpoint; clear any after it.
            let entries = start + Self.blockHeaderSize + paddedName
            var filled = 0
            while filled < capacity {
                let entryPosition = Int64(littleEndian: UnsafeRawPointer(entries + filled * Self.entrySize).loadUnaligned(as: Int64.self))
                guard entryPosition != 0, entryPosition < validBelow else { break }
                filled += 1
            }
            if filled < capacity {
                memset(entries + filled * Self.entrySize, 0, (capacity - filled) * Self.entrySize)
            }
            if filled > 0 {
                queues[Int(identifier)].nextOffset = firstOffset + Int64(filled)
            }
            position += Int64(size)
        }
    }
}
