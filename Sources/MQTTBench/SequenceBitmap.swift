/// The sequence numbers of one publisher that have arrived, exactly (one bit each), so that a
/// duplicate is told from a late message however late it is — in a consumer group, members work on
/// their batches at once, so arrivals interleave far beyond ``SequenceTracker``'s window.
struct SequenceBitmap: Sendable, Hashable {
    /// Numbers at or above it are counted as new without a check (16 MiB of bits per publisher).
    static let trackedLimit: UInt64 = 1 << 27

    private var words: [UInt64] = []

    /// Marks `sequence`; false when it was marked before.
    mutating func insert(_ sequence: UInt64) -> Bool {
        guard sequence < Self.trackedLimit else { return true }
        let word = Int(sequence >> 6)
        let bit: UInt64 = 1 << (sequence & 63)
        if word >= words.count {
            words.append(contentsOf: repeatElement(0, count: max(word + 1 - words.count, words.count)))
        }
        guard words[word] & bit == 0 else { return false }
        words[word] |= bit
        return true
    }
}
