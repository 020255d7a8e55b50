/// The fuzz input read as a stream of choices. Past the end every read answers zero, so any byte
/// string is a complete, deterministic script: the same bytes always replay the same events.
public struct FuzzInput: Sendable {
    private let bytes: [UInt8]
    private var index = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Whether every byte has been read.
    public var isExhausted: Bool { index >= bytes.count }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// A value in `0..<count` (`count` at most 256).
    public mutating func choice(_ count: Int) -> Int {
        precondition(count > 0 && count <= 256)
        return Int(byte()) % count
    }

    /// One of `values`.
    public mutating func pick<T>(_ values: [T]) -> T {
        values[choice(values.count)]
    }

    /// True with about `percent` per cent.
    public mutating func chance(_ percent: Int) -> Bool {
        Int(byte()) * 100 < percent * 256
    }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func bytes(upTo count: Int) -> [UInt8] {
        let end = min(bytes.count, index + count)
        guard index < end else { return [] }
        defer { index = end }
        return Array(bytes[index..<end])
    }
}
