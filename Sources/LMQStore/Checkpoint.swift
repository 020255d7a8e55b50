#if canImport(Glibc)
import Glibc
#endif

/// The recovery starting point, written after the commit log and the index are synced: every record
/// below `commitLogPosition` is on disk and indexed, and the index is valid up to `indexAllocationEnd`.
///
/// ```
/// 0   u64  magic "LMQCHKPT"
/// 8   u32  format version (1)
/// 12  u32  CRC-32C of bytes [16, 48)
/// 16  i64  commit-log position
/// 24  i64  index allocation end
/// 32  i64  queue count
/// 40  i64  written at, ms since the epoch
/// ```
/// Written to a temporary file, synced, then renamed over the old one, so a crash leaves either.
struct Checkpoint: Hashable {
    static let magic: UInt64 = 0x5450_4B48_4351_4D4C  // "LMQCHKPT"
    static let formatVersion: UInt32 = 1
    static let size = 48

    var commitLogPosition: Int64
    var indexAllocationEnd: Int64
    var queueCount: Int64
    var writtenAtMillis: Int64

    /// Reads the checkpoint, or nil if there is none. A checkpoint that fails its checksum is treated
    /// as missing (the caller rebuilds the index from the whole log).
    static func read(path: String) throws -> Checkpoint? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw LMQStoreError.errno("open", path)
        }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: size)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard count == size else { return nil }
        return try bytes.withUnsafeBytes { raw -> Checkpoint? in
            guard raw.loadUnaligned(as: UInt64.self).littleEndian == magic else { throw LMQStoreError.notAStoreFile(path: path) }
            let version = raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
            guard version == formatVersion else { throw LMQStoreError.unsupportedFormat(path: path, found: version, supported: formatVersion) }
            guard raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[16..<size])) else {
                return nil
            }
            return Checkpoint(
                commitLogPosition: raw.loadUnaligned(fromByteOffset: 16, as: Int64.self).littleEndian,
                indexAllocationEnd: raw.loadUnaligned(fromByteOffset: 24, as: Int64.self).littleEndian,
                queueCount: raw.loadUnaligned(fromByteOffset: 32, as: Int64.self).littleEndian,
                writtenAtMillis: raw.loadUnaligned(fromByteOffset: 40, as: Int64.self).littleEndian
            )
        }
    }

    func write(path: String) throws {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.withUnsafeMutableBytes { raw in
            var writer = RawWriter(base: raw.baseAddress!)
            writer.write(Self.magic)
            writer.write(Self.formatVersion)
            writer.position = 16
            writer.write(commitLogPosition)
            writer.write(indexAllocationEnd)
            writer.write(queueCount)
            writer.write(writtenAtMillis)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[16..<Self.size]))
            writer.position = 12
            writer.write(crc)
        }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LMQStoreError.errno("create", temporary) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, Self.size) }
        guard written == Self.size, fsync(fd) == 0 else {
            let error = LMQStoreError.errno("write", temporary)
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw LMQStoreError.errno("rename", path) }
        try MappedFile.syncDirectory(of: path)
    }
}
