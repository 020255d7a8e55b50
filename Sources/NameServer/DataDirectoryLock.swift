#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `<dataDir>/namesrv.lock`, held while a name server runs: two servers on one
/// data folder would each trust their own in-memory copy of the metadata and overwrite each other.
/// The kernel releases the lock when the process dies, so `kill -9` leaves nothing to clean up.
final class DataDirectoryLock: Sendable {
    private let fileDescriptor: Int32

    init(directory: String) throws(NameServerError) {
        let path = directory + "/namesrv.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw .storageFailed("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? "another name server is using \(directory)" : String(cString: strerror(errno))
            close(descriptor)
            throw .storageFailed("cannot lock \(path): \(reason)")
        }
        fileDescriptor = descriptor
    }

    deinit {
        flock(fileDescriptor, LOCK_UN)
        close(fileDescriptor)
    }
}
