/// Follows the sequence numbers one subscriber receives from one publisher, with a 64-message window
/// behind the highest number seen, so that a duplicate can be told from a late (reordered) message
/// without remembering every number.
struct SequenceTracker: Sendable, Hashable {
    /// What one arrival was.
    enum Arrival: Sendable, Hashable {
        /// The next number, or the first one seen.
        case inOrder
        /// Ahead of the next expected number: `skipped` numbers are missing so far.
        case ahead(skipped: UInt64)
        /// Below the highest number seen and not seen before: it was overtaken.
        case late
        /// Seen before.
        case duplicate
    }

    static let windowSize: UInt64 = 64

    private(set) var firstSequence: UInt64 = 0
    private(set) var highestSequence: UInt64 = 0
    /// Bit i set: `highestSequence - i` has been seen.
    private var window: UInt64 = 0
    /// Distinct numbers seen (a late message older than the window is assumed distinct).
    private(set) var uniqueCount: UInt64 = 0

    mutating func record(_ sequence: UInt64) -> Arrival {
        guard uniqueCount > 0 else {
            firstSequence = sequence
            highestSequence = sequence
            window = 1
            uniqueCount = 1
            return .inOrder
        }
        if sequence > highestSequence {
            let shift = sequence - highestSequence
            window = shift >= Self.windowSize ? 1 : (window << shift) | 1
            highestSequence = sequence
            uniqueCount += 1
            return shift == 1 ? .inOrder : .ahead(skipped: shift - 1)
        }
        let distance = highestSequence - sequence
        if distance < Self.windowSize {
            let bit: UInt64 = 1 << distance
            if window & bit != 0 { return .duplicate }
            window |= bit
        }
        if sequence < firstSequence { firstSequence = sequence }
        uniqueCount += 1
        return .late
    }

    /// Numbers between the first and the highest seen that never arrived.
    var missingCount: UInt64 {
        guard uniqueCount > 0 else { return 0 }
        let span = highestSequence - firstSequence + 1
        return span > uniqueCount ? span - uniqueCount : 0
    }
}
