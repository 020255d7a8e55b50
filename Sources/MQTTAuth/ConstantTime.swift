/// Comparisons whose running time does not depend on where two secrets differ.
public enum ConstantTime {
    /// Compares `provided` with `expected` byte by byte without an early exit.
    ///
    /// The loop always runs over all of `expected`, so its time depends only on `expected.count` (public:
    /// every derived password has the same length), never on the position of the first differing byte.
    /// A length mismatch is folded into the result instead of returning early.
    ///
    /// - Returns: `true` when both have the same length and the same bytes.
    public static func isEqual<Expected: RandomAccessCollection<UInt8>, Provided: RandomAccessCollection<UInt8>>(
        expected: Expected,
        provided: Provided
    ) -> Bool {
        var difference = UInt(bitPattern: expected.count ^ provided.count)
        var providedIndex = provided.startIndex
        for expectedByte in expected {
            // Past the end of `provided`, compare against a stand-in byte: the length check above has
            // already made the result false, and the loop must still run to the end.
            let providedByte: UInt8
            if providedIndex != provided.endIndex {
                providedByte = provided[providedIndex]
                providedIndex = provided.index(after: providedIndex)
            } else {
                providedByte = ~expectedByte
            }
            difference |= UInt(expectedByte ^ providedByte)
        }
        return difference == 0
    }
}
