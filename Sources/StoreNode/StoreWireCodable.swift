import LMQStore
import NIOCore

/// A value with a binary form in the store-node protocol (docs/store-protocol.md).
///
/// Decoding is length-checked: a truncated or malformed body throws ``StoreWireError``.
public protocol StoreWireCodable: Sendable {
    /// Appends the value's bytes.
    func write(to buffer: inout ByteBuffer)
    /// Reads a value written by ``write(to:)``.
    init(from reader: inout StoreWireReader) throws(StoreWireError)
}

/// Encodes and decodes whole bodies of the store-node protocol.
public enum StoreWireCodec {
    /// The bytes of `value`.
    public static func encode(_ value: some StoreWireCodable) -> ByteBuffer {
        var buffer = ByteBuffer()
        value.write(to: &buffer)
        return buffer
    }

    /// Decodes a `T` that fills `buffer` exactly.
    public static func decode<T: StoreWireCodable>(_ type: T.Type, from buffer: ByteBuffer) throws(StoreWireError) -> T {
        var reader = StoreWireReader(buffer)
        let value = try T(from: &reader)
        try reader.finish()
        return value
    }
}

extension String: StoreWireCodable {
    public func write(to buffer: inout ByteBuffer) { buffer.writeWireString(self) }
    public init(from reader: inout StoreWireReader) throws(StoreWireError) { self = try reader.string("string") }
}

extension Int64: StoreWireCodable {
    public func write(to buffer: inout ByteBuffer) { buffer.writeInteger(self) }
    public init(from reader: inout StoreWireReader) throws(StoreWireError) { self = try reader.integer("int64") }
}

extension Bool: StoreWireCodable {
    public func write(to buffer: inout ByteBuffer) { buffer.writeWireBool(self) }
    public init(from reader: inout StoreWireReader) throws(StoreWireError) { self = try reader.bool("bool") }
}

extension Array: StoreWireCodable where Element: StoreWireCodable {
    /// A u32 count, then the elements.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(count))
        for element in self { element.write(to: &buffer) }
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let count = try reader.count("element count")
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try Element(from: &reader)) }
        self = elements
    }
}

extension Optional: StoreWireCodable where Wrapped: StoreWireCodable {
    /// A presence byte (0 or 1), then the value when present.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .none:
            buffer.writeWireBool(false)
        case .some(let value):
            buffer.writeWireBool(true)
            value.write(to: &buffer)
        }
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self = try reader.bool("presence flag") ? try Wrapped(from: &reader) : nil
    }
}

/// A `(queue, offset)` list keyed by queue: maximum offsets, watch answers.
extension Dictionary: StoreWireCodable where Key == String, Value == Int64 {
    /// Written as a ``QueueOffset`` list sorted by queue, so equal dictionaries encode to equal bytes.
    public func write(to buffer: inout ByteBuffer) {
        sorted { $0.key < $1.key }.map { QueueOffset(queue: $0.key, offset: $0.value) }.write(to: &buffer)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let list = try [QueueOffset](from: &reader)
        self = Dictionary(list.map { ($0.queue, $0.offset) }, uniquingKeysWith: { _, last in last })
    }
}

extension UInt32: StoreWireCodable {
    public func write(to buffer: inout ByteBuffer) { buffer.writeInteger(self) }
    public init(from reader: inout StoreWireReader) throws(StoreWireError) { self = try reader.integer("uint32") }
}

extension UInt16: StoreWireCodable {
    public func write(to buffer: inout ByteBuffer) { buffer.writeInteger(self) }
    public init(from reader: inout StoreWireReader) throws(StoreWireError) { self = try reader.integer("uint16") }
}

extension UInt8: StoreWireCodable {
    public func write(to buffer: inout ByteBuffer) { buffer.writeInteger(self) }
    public init(from reader: inout StoreWireReader) throws(StoreWireError) { self = try reader.integer("uint8") }
}
