/// The UTF-8 bytes of a topic level (or of a whole topic), as a dictionary key of ``TopicFilterTrie``.
///
/// Compared and hashed as bytes, with no Unicode normalization [MQTT-4.7.3-4]. A key either owns a copy
/// of its bytes (the keys stored in the trie) or borrows them from a topic being matched. Borrowing is
/// what keeps matching free of allocations and reference counting: a borrowed key is built inside a
/// `withContiguousStorage` scope, used for one dictionary lookup, and never stored.
@usableFromInline
struct TopicLevelKey: Hashable, @unchecked Sendable {
    // @unchecked: `bytes` points either into `storage`, which is immutable after init and kept alive by
    // this key, or into a caller's buffer for the duration of a lookup; only owning keys are ever stored.
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline let storage: Storage?

    /// A key that refers to `bytes` without copying them; valid only while `bytes` is.
    @inlinable
    init(borrowing bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.storage = nil
    }

    /// A key that owns a copy of `bytes`, safe to store.
    init(copying bytes: UnsafeRawBufferPointer) {
        let storage = Storage(copying: bytes)
        self.bytes = UnsafeRawBufferPointer(start: storage.bytes.baseAddress, count: bytes.count)
        self.storage = storage
    }

    /// A key that owns a copy of `bytes`, safe to store.
    init(copying bytes: Substring.UTF8View) {
        self = TopicBytes.withContiguousBytes(bytes) { TopicLevelKey(copying: $0) }
    }

    @inlinable
    static func == (lhs: TopicLevelKey, rhs: TopicLevelKey) -> Bool {
        lhs.bytes.count == rhs.bytes.count && lhs.bytes.elementsEqual(rhs.bytes)
    }

    @inlinable
    func hash(into hasher: inout Hasher) {
        hasher.combine(bytes: bytes)
    }

    /// The heap copy behind an owning key; its bytes never change after `init`.
    @usableFromInline
    final class Storage: @unchecked Sendable {
        // @unchecked: `bytes` is written once in init and only read afterwards.
        @usableFromInline let bytes: UnsafeMutableRawBufferPointer

        init(copying source: UnsafeRawBufferPointer) {
            // At least one byte, so that an empty level still gets a valid, unique allocation.
            bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 1)
            bytes.copyMemory(from: source)
        }

        deinit {
            bytes.deallocate()
        }
    }
}
