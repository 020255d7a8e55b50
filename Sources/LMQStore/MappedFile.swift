#if canImport(Glibc)
import Glibc
#endif

/// A file of fixed size mapped into memory, shared with the page cache: a write is a `memcpy`, a
/// read a pointer, and `sync` makes a range durable. Blocks are reserved with `posix_fallocate` when
/// the file is created, so running out of disk shows up as an error here instead of a SIGBUS later.
///
/// `@unchecked Sendable`: the mapping's address and size never change after init; callers coordinate
/// who writes which bytes (the store's writer lock), and bytes once written are only read.
final class MappedFile: @unchecked Sendable {
    let path: String
    let size: Int
    let base: UnsafeMutableRawPointer
    private let fd: Int32
    private(set) var isDeleted = false

    private init(path: String, fd: Int32, size: Int) throws(LMQStoreError) {
        guard let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), pointer != MAP_FAILED else {
            let error = LMQStoreError.errno("mmap", path)
            Glibc.close(fd)
            throw error
        }
        self.path = path
        self.fd = fd
        self.size = size
        self.base = pointer
    }

    /// Creates a new file of `size` bytes and maps it. `initialize` writes its header; only then does the
    /// file get its name (it is built as `<path>.tmp`, synced and renamed), so a crash never leaves a
    /// named file without a header. Leftover `.tmp` files are removed by `removeTemporaryFiles`.
    static func create(path: String, size: Int, initialize: (UnsafeMutableRawPointer) -> Int) throws(LMQStoreError) -> MappedFile {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .errno("create", temporary) }
        let result = posix_fallocate(fd, 0, off_t(size))
        if result != 0 {
            // Filesystems without fallocate (tmpfs on old kernels, some overlays): fall back to a sparse file.
            guard ftruncate(fd, off_t(size)) == 0 else {
                let error = LMQStoreError.errno("ftruncate", temporary)
                Glibc.close(fd)
                unlink(temporary)
                throw error
            }
        }
        let file = try MappedFile(path: path, fd: fd, size: size)
        let headerSize = initialize(file.base)
        try file.sync(0..<headerSize)
        guard rename(temporary, path) == 0 else { throw .errno("rename", path) }
        try syncDirectory(of: path)
        return file
    }

    /// Removes `*.tmp` files left by a crash during `create`.
    static func removeTemporaryFiles(in directory: String, names: [String]) {
        for name in names where name.hasSuffix(".tmp") { unlink(directory + "/" + name) }
    }

    /// Maps an existing file at its current size.
    static func open(path: String) throws(LMQStoreError) -> MappedFile {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .errno("open", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = LMQStoreError.errno("fstat", path)
            Glibc.close(fd)
            throw error
        }
        return try MappedFile(path: path, fd: fd, size: Int(info.st_size))
    }

    deinit {
        munmap(base, size)
        Glibc.close(fd)
    }

    /// Writes `range` of the mapping to disk and waits for it (`msync(MS_SYNC)` on whole pages).
    func sync(_ range: Range<Int>) throws(LMQStoreError) {
        guard !range.isEmpty else { return }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / pageSize * pageSize
        let end = min(size, range.upperBound)
        guard msync(base + start, end - start, MS_SYNC) == 0 else { throw .errno("msync", path) }
    }

    /// Syncs the whole file, data and metadata.
    func syncAll() throws(LMQStoreError) {
        guard fsync(fd) == 0 else { throw .errno("fsync", path) }
    }

    /// Removes the file; the mapping stays valid until the last reference goes away.
    func delete() throws(LMQStoreError) {
        guard !isDeleted else { return }
        guard unlink(path) == 0 else { throw .errno("unlink", path) }
        isDeleted = true
    }

    /// Makes a file's directory entry durable (after create, rename or unlink).
    static func syncDirectory(of path: String) throws(LMQStoreError) {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .errno("open directory", directory) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw .errno("fsync directory", directory) }
    }
}
