import NIOConcurrencyHelpers

/// The most recently decoded commit-log records, by position: when many subscribers read the same new
/// message (a fan-out: one queue, a thousand readers), one of them verifies and decodes the record and
/// the others take the decoded message (its payload buffer is shared, copy-on-write) instead of checking
/// the CRC and decoding it again each. A small ring, searched linearly: readers of a fan-out are at the
/// head of their queue, so the records they want are the last few written. Commit-log positions are
/// never reused (the log only grows; recovery truncates before the store opens), so entries never go stale.
///
/// `@unchecked Sendable`: the ring is guarded by `lock`.
final class DecodedRecordCache: @unchecked Sendable {
    static let capacity = 64

    private let lock = NIOLock()
    private var positions = [Int64](repeating: -1, count: capacity)
    private var messages = [StoredMessage?](repeating: nil, count: capacity)
    private var next = 0

    func message(at position: Int64) -> StoredMessage? {
        lock.withLock {
            guard let index = positions.firstIndex(of: position) else { return nil }
            return messages[index]
        }
    }

    func insert(_ message: StoredMessage, at position: Int64) {
        lock.withLock {
            positions[next] = position
            messages[next] = message
            next = (next + 1) % Self.capacity
        }
    }
}
