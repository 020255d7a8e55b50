/// Byte-level helpers shared by ``TopicName``, ``TopicFilter`` and ``TopicFilterTrie``.
///
/// Topics are compared and hashed as UTF-8 bytes, never as Swift `String`s: `String` equality is
/// canonical equivalence (`"é" == "e\u{301}"`), while MQTT forbids any normalization when matching
/// subscriptions [MQTT-4.7.3-4]. Everything here walks the UTF-8 view and allocates nothing for
/// native strings.
@usableFromInline
enum TopicBytes {
    /// The longest UTF-8 encoded string MQTT can carry (a two-byte length prefix, §1.5.4).
    @inlinable static var maxLengthBytes: Int { 65_535 }

    // Computed rather than stored so that inlined hot loops see constants, not lazy globals.
    @inlinable static var levelSeparator: UInt8 { UInt8(ascii: "/") }
    @inlinable static var singleLevelWildcard: UInt8 { UInt8(ascii: "+") }
    @inlinable static var multiLevelWildcard: UInt8 { UInt8(ascii: "#") }
    @inlinable static var dollar: UInt8 { UInt8(ascii: "$") }

    /// Byte-wise equality; no Unicode normalization [MQTT-4.7.3-4].
    @inlinable
    static func equal(_ lhs: Substring.UTF8View, _ rhs: Substring.UTF8View) -> Bool {
        guard lhs.count == rhs.count else { return false }
        let contiguous: Bool?? = lhs.withContiguousStorageIfAvailable { left in
            rhs.withContiguousStorageIfAvailable { right in left.elementsEqual(right) }
        }
        if let contiguous, let result = contiguous { return result }
        return lhs.elementsEqual(rhs)
    }

    /// Feeds the bytes to `hasher` the same way whether or not the storage is contiguous, so
    /// equal byte sequences always hash equally.
    @inlinable
    static func hash(_ bytes: Substring.UTF8View, into hasher: inout Hasher) {
        let hashed: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            hasher.combine(bytes: UnsafeRawBufferPointer(buffer))
        }
        if hashed == nil {
            // Only bridged, non-native strings get here; the copy keeps the hash identical.
            Array(bytes).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    /// Runs `body` over the UTF-8 bytes of `bytes` in one buffer; copies only when the storage is not
    /// contiguous (bridged strings), which native Swift strings always are.
    @inlinable
    static func withContiguousBytes<Result>(
        _ bytes: Substring.UTF8View,
        _ body: (UnsafeRawBufferPointer) -> Result
    ) -> Result {
        if let result = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes(body)
    }

    /// The first level of a topic or filter: everything before the first `/` (all of it when there is none).
    @inlinable
    static func firstLevel(of string: String) -> Substring {
        let utf8 = string.utf8
        let end = utf8.firstIndex(of: levelSeparator) ?? utf8.endIndex
        return Substring(utf8[utf8.startIndex..<end])
    }

    /// The levels of a topic or filter as substrings; empty levels are kept (`a//b` has three levels).
    static func levels(of string: String) -> [Substring] {
        var levels: [Substring] = []
        var iterator = TopicLevelIterator(string.utf8[...])
        while let level = iterator.next() {
            levels.append(Substring(level))
        }
        return levels
    }
}

/// Walks the `/`-separated levels of a topic or filter without allocating.
///
/// A string always has at least one level: `""` has one empty level, `"a/"` has `a` and an empty level.
@usableFromInline
struct TopicLevelIterator: IteratorProtocol {
    @usableFromInline let bytes: Substring.UTF8View
    @usableFromInline var position: Substring.UTF8View.Index
    @usableFromInline var isFinished: Bool

    @inlinable
    init(_ bytes: Substring.UTF8View) {
        self.bytes = bytes
        self.position = bytes.startIndex
        self.isFinished = false
    }

    @inlinable
    mutating func next() -> Substring.UTF8View? {
        if isFinished { return nil }
        var end = position
        while end != bytes.endIndex && bytes[end] != TopicBytes.levelSeparator {
            bytes.formIndex(after: &end)
        }
        let level = bytes[position..<end]
        if end == bytes.endIndex {
            isFinished = true
        } else {
            position = bytes.index(after: end)
        }
        return level
    }
}
