import NIOCore

/// Reads the primitives of the store-node wire format (docs/store-protocol.md) from a body, checking
/// every length against what is left before reading, so a truncated or hostile body throws a
/// ``StoreWireError`` and never traps or allocates by what it claims.
public struct StoreWireReader {
    private var buffer: ByteBuffer
    private let startIndex: Int

    public init(_ buffer: ByteBuffer) {
        self.buffer = buffer
        self.startIndex = buffer.readerIndex
    }

    /// Bytes read so far.
    public var offset: Int { buffer.readerIndex - startIndex }
    /// Bytes left.
    public var remaining: Int { buffer.readableBytes }

    /// A big-endian integer.
    public mutating func integer<T: FixedWidthInteger>(_ field: String, as type: T.Type = T.self) throws(StoreWireError) -> T {
        guard let value = buffer.readInteger(as: T.self) else { throw .truncated(field: field, offset: offset) }
        return value
    }

    /// A byte that must be 0 or 1.
    public mutating func bool(_ field: String) throws(StoreWireError) -> Bool {
        let at = offset
        switch try integer(field, as: UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw .invalidValue(field: field, offset: at, reason: "expected 0 or 1, found \(other)")
        }
    }

    /// A byte that must be a raw value of `T`.
    public mutating func rawValue<T: RawRepresentable>(_ field: String, as type: T.Type) throws(StoreWireError) -> T where T.RawValue == UInt8 {
        let at = offset
        let raw = try integer(field, as: UInt8.self)
        guard let value = T(rawValue: raw) else { throw .invalidValue(field: field, offset: at, reason: "unknown value \(raw)") }
        return value
    }

    /// A u32 length and that many bytes, as a slice of the body (not a copy).
    public mutating func bytes(_ field: String) throws(StoreWireError) -> ByteBuffer {
        let length = try self.length(field)
        return buffer.readSlice(length: length)!
    }

    /// A u32 length and that many bytes of UTF-8.
    public mutating func string(_ field: String) throws(StoreWireError) -> String {
        let length = try self.length(field)
        return buffer.readString(length: length)!
    }

    /// A u32 element count, checked against what is left (every element takes at least
    /// `minimumElementBytes`).
    public mutating func count(_ field: String, minimumElementBytes: Int = 1) throws(StoreWireError) -> Int {
        let at = offset
        let count = Int(try integer(field, as: UInt32.self))
        guard count <= remaining / max(1, minimumElementBytes) else {
            throw .invalidValue(field: field, offset: at, reason: "\(count) elements cannot fit in the \(remaining) bytes left")
        }
        return count
    }

    /// Throws unless every byte was read.
    public func finish() throws(StoreWireError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }

    private mutating func length(_ field: String) throws(StoreWireError) -> Int {
        let lengthOffset = offset
        let length = Int(try integer(field, as: UInt32.self))
        guard length <= remaining else {
            throw .truncated(field: field, offset: lengthOffset + 4 + remaining)
        }
        return length
    }
}

extension ByteBuffer {
    /// Writes a u32 length and the UTF-8 of `string` (the reader's ``StoreWireReader/string(_:)``).
    mutating func writeWireString(_ string: String) {
        writeInteger(UInt32(string.utf8.count))
        writeString(string)
    }

    /// Writes a u32 length and the bytes (the reader's ``StoreWireReader/bytes(_:)``).
    mutating func writeWireBytes(_ bytes: ByteBuffer) {
        writeInteger(UInt32(bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }

    mutating func writeWireBool(_ value: Bool) {
        writeInteger(UInt8(value ? 1 : 0))
    }
}
