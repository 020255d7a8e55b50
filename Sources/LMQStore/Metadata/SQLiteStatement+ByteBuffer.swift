import NIOCore
import SQLite

// The SQLite target stays free of NIO; these bridge ByteBuffer payloads to blob columns without an
// intermediate array.
extension SQLiteStatement {
    /// Binds the readable bytes of `buffer` as a blob to parameter `index` (1-based).
    func bind(_ index: Int, _ buffer: ByteBuffer) throws(SQLiteError) {
        try buffer.withUnsafeReadableBytes { bytes throws(SQLiteError) in
            try bindBlob(index, bytes: bytes)
        }
    }

    /// Column `index` (0-based) copied into a new ByteBuffer; NULL reads as an empty buffer.
    func byteBuffer(at index: Int) -> ByteBuffer {
        withBlob(at: index) { bytes in ByteBuffer(bytes: bytes) }
    }

    /// Column `index` (0-based) as an integer, or `nil` when it is NULL.
    func optionalInt64(at index: Int) -> Int64? {
        isNull(at: index) ? nil : int64(at: index)
    }
}
