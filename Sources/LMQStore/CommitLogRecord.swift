import MQTTCore
import NIOCore

/// The on-disk record of one message in the commit log (docs/store.md, "Commit log record").
/// All integers little-endian.
///
/// ```
/// 0   u32  magic 0x4C4D5131 ("1QML")      | BLANK 0x4B4E4C42 fills the end of a segment
/// 4   u32  total size of the record
/// 8   u32  CRC-32C of bytes [12, size)
/// 12  u8   record version (1)
/// 13  u8   flags: bits 0-1 QoS, bit 2 retain, bit 3 origin client identifier present
/// 14  u16  number of queues
/// 16  i64  store timestamp, ms since the epoch
/// 24  u64  message id
/// 32  u16 + bytes  topic
///     u16 + bytes  first topic
///     u16 + bytes  origin client identifier (only with flag bit 3)
///     MQTT 5.0 property list (variable byte integer length + properties)
///     u32 + bytes  payload
///     per queue: u16 + bytes name, i64 offset
/// ```
enum CommitLogRecord {
    static let magic: UInt32 = 0x4C4D_5131
    static let blankMagic: UInt32 = 0x4B4E_4C42
    static let version: UInt8 = 1
    static let fixedHeaderSize = 32
    /// The flag saying an origin client identifier follows the first topic.
    static let originFlag: UInt8 = 0b1000
    /// The smallest record: fixed header, two empty strings, an empty property list, an empty payload.
    static let minimumSize = fixedHeaderSize + 2 + 2 + 1 + 4

    /// What a writer computed before taking the lock: everything but the queue offsets.
    struct Prepared {
        var message: LMQMessage
        var firstTopic: Substring
        /// The property list in wire format, or nil when empty (written as a single 0 byte).
        var encodedProperties: ByteBuffer?
        var queues: [String]
        var size: Int
    }

    static func prepare(_ message: LMQMessage, queues: [String], limits: LMQStore.Limits) throws -> Prepared {
        let firstTopic = message.topic.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var encodedProperties: ByteBuffer?
        var propertiesSize = 1
        if !message.properties.isEmpty {
            var buffer = ByteBuffer()
            try message.properties.encode(into: &buffer, context: .publish)
            propertiesSize = buffer.readableBytes
            encodedProperties = buffer
        }
        guard message.topic.utf8.count <= Int(UInt16.max) else { throw LMQStoreError.invalidQueueName(message.topic) }
        var size = fixedHeaderSize + 2 + message.topic.utf8.count + 2 + firstTopic.utf8.count + propertiesSize
        if let origin = message.originClientIdentifier {
            guard origin.utf8.count <= Int(UInt16.max) else { throw LMQStoreError.invalidQueueName(origin) }
            size += 2 + origin.utf8.count
        }
        size += 4 + message.payload.readableBytes
        for queue in queues { size += 2 + queue.utf8.count + 8 }
        guard size <= limits.maxMessageSizeBytes else {
            throw LMQStoreError.messageTooLarge(sizeBytes: size, limitBytes: limits.maxMessageSizeBytes)
        }
        return Prepared(message: message, firstTopic: firstTopic, encodedProperties: encodedProperties, queues: queues, size: size)
    }

    /// Writes the record at `destination` (which has room for `prepared.size` bytes) and checksums it.
    static func write(_ prepared: Prepared, offsets: [Int64], timestampMillis: Int64, to destination: UnsafeMutableRawPointer) {
        var writer = RawWriter(base: destination)
        writer.position = 12
        writer.write(version)
        let originFlag: UInt8 = prepared.message.originClientIdentifier == nil ? 0 : originFlag
        writer.write(UInt8(prepared.message.qos.rawValue | (prepared.message.retain ? 0b100 : 0) | originFlag))
        writer.write(UInt16(prepared.queues.count))
        writer.write(timestampMillis)
        writer.write(prepared.message.messageId)
        writer.writeString(prepared.message.topic)
        writer.writeString(prepared.firstTopic)
        if let origin = prepared.message.originClientIdentifier {
            writer.writeString(origin)
        }
        if let properties = prepared.encodedProperties {
            writer.write(properties)
        } else {
            writer.write(UInt8(0))
        }
        writer.write(UInt32(prepared.message.payload.readableBytes))
        writer.write(prepared.message.payload)
        for (queue, offset) in zip(prepared.queues, offsets) {
            writer.writeString(queue)
            writer.write(offset)
        }
        precondition(writer.position == prepared.size, "record size \(writer.position) != computed \(prepared.size)")
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: destination + 12, count: prepared.size - 12))
        writer.position = 0
        writer.write(magic)
        writer.write(UInt32(prepared.size))
        writer.write(crc)
    }

    /// What is found at a position of a segment.
    enum Scan {
        case record(size: Int)
        /// A filler to the end of the segment.
        case blank
        /// Zeroes: the end of the written log.
        case end
        /// Bytes that are not a whole, intact record: a torn write or corruption.
        case invalid(reason: String)
    }

    /// Checks the record at `offset` of `segment` (magic, size, CRC) without decoding it.
    static func scan(_ segment: UnsafeRawBufferPointer, at offset: Int) -> Scan {
        guard segment.count - offset >= 12 else {
            // A gap too small for a blank filler is left as zeroes.
            return segment[offset...].allSatisfy { $0 == 0 } ? .end : .invalid(reason: "partial header")
        }
        let recordMagic = segment.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
        let size = Int(segment.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian)
        switch recordMagic {
        case 0:
            return size == 0 ? .end : .invalid(reason: "zero magic with size \(size)")
        case blankMagic:
            return size == segment.count - offset ? .blank : .invalid(reason: "blank filler of wrong size \(size)")
        case magic:
            guard size >= minimumSize, size <= segment.count - offset else { return .invalid(reason: "record size \(size) out of bounds") }
            let stored = segment.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self).littleEndian
            let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: segment[(offset + 12)..<(offset + size)]))
            guard stored == computed else { return .invalid(reason: "CRC mismatch (stored \(stored), computed \(computed))") }
            guard segment[offset + 12] == version else { return .invalid(reason: "record version \(segment[offset + 12])") }
            return .record(size: size)
        default:
            return .invalid(reason: "bad magic 0x\(String(recordMagic, radix: 16))")
        }
    }

    /// Decodes a record that `scan` accepted.
    static func decode(_ bytes: UnsafeRawBufferPointer, position: Int64) throws -> StoredMessage {
        var reader = RawReader(bytes: bytes, position: 12)
        _ = try reader.read(UInt8.self)
        let flags = try reader.read(UInt8.self)
        let queueCount = Int(try reader.read(UInt16.self))
        let timestamp = try reader.read(Int64.self)
        let messageId = try reader.read(UInt64.self)
        let topic = try reader.readString()
        let firstTopic = try reader.readString()
        let origin = flags & originFlag != 0 ? try reader.readString() : nil
        var propertyBuffer = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[reader.position...]))
        let before = propertyBuffer.readableBytes
        let properties = try MQTTProperties.decode(from: &propertyBuffer, context: .publish)
        reader.position += before - propertyBuffer.readableBytes
        let payloadLength = Int(try reader.read(UInt32.self))
        let payload = ByteBuffer(bytes: try reader.readBytes(payloadLength))
        var queueOffsets: [QueueOffset] = []
        queueOffsets.reserveCapacity(queueCount)
        for _ in 0..<queueCount {
            let name = try reader.readString()
            queueOffsets.append(QueueOffset(queue: name, offset: try reader.read(Int64.self)))
        }
        guard let qos = MQTTQoS(rawValue: flags & 0b11) else { throw RawReader.Failure.invalid("QoS bits") }
        return StoredMessage(
            message: LMQMessage(
                topic: topic, payload: payload, qos: qos, retain: flags & 0b100 != 0, messageId: messageId, properties: properties,
                originClientIdentifier: origin
            ),
            firstTopic: firstTopic, storeTimestampMillis: timestamp, commitLogPosition: position, queueOffsets: queueOffsets
        )
    }

    /// Just the queue names and offsets of a record, for rebuilding the index.
    static func decodeQueueOffsets(_ bytes: UnsafeRawBufferPointer) throws -> [QueueOffset] {
        var reader = RawReader(bytes: bytes, position: 13)
        let flags = try reader.read(UInt8.self)
        let queueCount = Int(try reader.read(UInt16.self))
        reader.position = fixedHeaderSize
        let topicLength = Int(try reader.read(UInt16.self))
        reader.position += topicLength
        let firstTopicLength = Int(try reader.read(UInt16.self))
        reader.position += firstTopicLength
        if flags & originFlag != 0 {
            let originLength = Int(try reader.read(UInt16.self))
            reader.position += originLength
        }
        // Skip the property list: a variable byte integer length, then that many bytes.
        var propertiesLength = 0
        var shift = 0
        while true {
            let byte = try reader.read(UInt8.self)
            propertiesLength |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            guard shift < 28 else { throw RawReader.Failure.invalid("property length") }
        }
        reader.position += propertiesLength
        let payloadLength = Int(try reader.read(UInt32.self))
        reader.position += payloadLength
        var queueOffsets: [QueueOffset] = []
        queueOffsets.reserveCapacity(queueCount)
        for _ in 0..<queueCount {
            let name = try reader.readString()
            queueOffsets.append(QueueOffset(queue: name, offset: try reader.read(Int64.self)))
        }
        return queueOffsets
    }
}

/// Sequential little-endian writes to raw memory whose size the caller has checked.
struct RawWriter {
    let base: UnsafeMutableRawPointer
    var position = 0

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        (base + position).storeBytes(of: value.littleEndian, as: T.self)
        position += MemoryLayout<T>.size
    }

    mutating func writeString<S: StringProtocol>(_ string: S) {
        let count = string.utf8.count
        write(UInt16(count))
        let copied: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            if let source = bytes.baseAddress { (base + position).copyMemory(from: source, byteCount: count) }
        }
        if copied == nil {
            for (index, byte) in string.utf8.enumerated() { (base + position + index).storeBytes(of: byte, as: UInt8.self) }
        }
        position += count
    }

    mutating func write(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            guard let source = bytes.baseAddress else { return }
            (base + position).copyMemory(from: source, byteCount: bytes.count)
        }
        position += buffer.readableBytes
    }
}

/// Bounds-checked little-endian reads from raw memory.
struct RawReader {
    enum Failure: Error, CustomStringConvertible {
        case truncated
        case invalid(String)
        var description: String {
            switch self {
            case .truncated: return "record truncated"
            case .invalid(let field): return "invalid \(field)"
            }
        }
    }

    let bytes: UnsafeRawBufferPointer
    var position: Int

    mutating func read<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard position >= 0, bytes.count - position >= size else { throw Failure.truncated }
        defer { position += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func readBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard position >= 0, count >= 0, bytes.count - position >= count else { throw Failure.truncated }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    mutating func readString() throws -> String {
        let count = Int(try read(UInt16.self))
        return String(decoding: try readBytes(count), as: UTF8.self)
    }
}
