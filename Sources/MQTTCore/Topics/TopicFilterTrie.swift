/// A set of `(topic filter, value)` pairs that answers "which filters match this topic name" quickly:
/// it runs for every PUBLISH.
///
/// Pairs are keyed by ``TopicFilter/filter``, the filter proper with any `$share/{ShareName}/` prefix
/// removed, so `a/+` and `$share/g/a/+` land on the same entry. Callers that need the share group keep
/// it in `Value` (for example a `(clientId, shareName?)` pair).
///
/// Layout: filters without wildcards live in one hash map keyed by their bytes, so an exact subscription
/// costs one lookup per publish. Wildcard filters live in a trie of nodes stored in one array and linked by
/// index; a node has a map of literal levels, a separate `+` child, the values of filters that end at it,
/// and the values of filters that end with `/#` after it. Matching walks the topic's UTF-8 bytes, looks
/// levels up with keys that borrow the topic's bytes (no `String` is built), and keeps its work list in a
/// temporary buffer that lives on the stack for ordinary topics, so a match allocates nothing beyond what
/// `body` does. The trie is a value type (copy on write).
///
/// Matching follows ``TopicFilter/matches(_:)``: `a/#` also matches `a`, `+` matches an empty level, and
/// filters whose first level is `+` or `#` do not match topics starting with `$` [MQTT-4.7.2-1].
/// Levels are compared byte for byte, without normalization [MQTT-4.7.3-4].
public struct TopicFilterTrie<Value: Hashable & Sendable>: Sendable {
    /// Filters without wildcards, by their bytes.
    @usableFromInline var exactFilters: [TopicLevelKey: Entry]
    /// Trie nodes of wildcard filters; index 0 is the root (no level consumed yet).
    @usableFromInline var nodes: [Node]
    /// Indices in `nodes` of pruned nodes, reused before the array grows.
    @usableFromInline var freeNodeIndices: [Int]
    /// Number of distinct wildcard filters in the trie.
    @usableFromInline var wildcardFilterCount: Int

    /// The number of `(filter, value)` pairs.
    public private(set) var count: Int

    /// Whether there are no pairs.
    public var isEmpty: Bool { count == 0 }

    /// The number of distinct filters (filter proper) that have at least one value.
    public var filterCount: Int { exactFilters.count + wildcardFilterCount }

    /// An empty trie.
    public init() {
        self.exactFilters = [:]
        self.nodes = [Node(parent: Self.rootIndex, edge: .root)]
        self.freeNodeIndices = []
        self.wildcardFilterCount = 0
        self.count = 0
    }

    /// Adds `value` under `filter.filter`.
    /// - Returns: `false` if that `(filter, value)` pair was already present.
    @discardableResult
    public mutating func insert(_ filter: TopicFilter, value: Value) -> Bool {
        let inserted: Bool
        if filter.hasWildcards {
            var nodeIndex = Self.rootIndex
            var levels = TopicLevelIterator(filter.filter.utf8[...])
            var endsWithMultiLevelWildcard = false
            while let level = levels.next() {
                if Self.isWildcard(level, TopicBytes.multiLevelWildcard) {
                    endsWithMultiLevelWildcard = true  // validation put '#' last [MQTT-4.7.1-2]
                    break
                }
                nodeIndex = childCreatingIfNeeded(of: nodeIndex, level: level)
            }
            var entry: Entry
            if endsWithMultiLevelWildcard {
                entry = nodes[nodeIndex].multiLevelEntry.take() ?? Entry(filter: filter.filter)
            } else {
                entry = nodes[nodeIndex].exactEntry.take() ?? Entry(filter: filter.filter)
            }
            if entry.values.isEmpty { wildcardFilterCount += 1 }
            inserted = entry.values.insert(value).inserted
            if endsWithMultiLevelWildcard {
                nodes[nodeIndex].multiLevelEntry = entry
            } else {
                nodes[nodeIndex].exactEntry = entry
            }
        } else {
            let key = TopicLevelKey(copying: filter.filter.utf8[...])
            inserted = exactFilters[key, default: Entry(filter: filter.filter)].values.insert(value).inserted
        }
        if inserted { count += 1 }
        return inserted
    }

    /// Removes `value` from `filter.filter`, pruning trie nodes left empty.
    /// - Returns: `false` if that `(filter, value)` pair was not present.
    @discardableResult
    public mutating func remove(_ filter: TopicFilter, value: Value) -> Bool {
        if !filter.hasWildcards {
            let key = TopicLevelKey(copying: filter.filter.utf8[...])
            guard exactFilters[key]?.values.remove(value) != nil else { return false }
            if exactFilters[key]?.values.isEmpty == true { exactFilters[key] = nil }
            count -= 1
            return true
        }
        guard let location = locate(filter) else { return false }
        var entry: Entry?
        if location.isMultiLevel {
            entry = nodes[location.nodeIndex].multiLevelEntry.take()
        } else {
            entry = nodes[location.nodeIndex].exactEntry.take()
        }
        let removed = entry?.values.remove(value) != nil
        if let remaining = entry, remaining.values.isEmpty {
            entry = nil
            wildcardFilterCount -= 1
        }
        if location.isMultiLevel {
            nodes[location.nodeIndex].multiLevelEntry = entry
        } else {
            nodes[location.nodeIndex].exactEntry = entry
        }
        if removed { count -= 1 }
        prune(from: location.nodeIndex)
        return removed
    }

    /// The values stored under `filter.filter` (empty when there are none).
    public func values(for filter: TopicFilter) -> Set<Value> {
        if !filter.hasWildcards {
            return TopicBytes.withContiguousBytes(filter.filter.utf8[...]) { bytes in
                exactFilters[TopicLevelKey(borrowing: bytes)]?.values ?? []
            }
        }
        guard let location = locate(filter) else { return [] }
        let node = nodes[location.nodeIndex]
        return (location.isMultiLevel ? node.multiLevelEntry : node.exactEntry)?.values ?? []
    }

    /// Whether the `(filter, value)` pair is present.
    public func contains(_ filter: TopicFilter, value: Value) -> Bool {
        values(for: filter).contains(value)
    }

    /// Calls `body` once for every `(filter, value)` pair whose filter matches `topic`, in no particular
    /// order. The first argument is the filter proper (shared prefix stripped) as it was inserted.
    @inlinable
    public func forEachMatch(_ topic: TopicName, _ body: (_ filter: String, _ value: Value) -> Void) {
        if exactFilters.isEmpty && wildcardFilterCount == 0 { return }
        TopicBytes.withContiguousBytes(topic.string.utf8[...]) { bytes in
            forEachMatch(topicBytes: bytes, body)
        }
    }

    /// The values of every pair whose filter matches `topic`, one element per matching pair: a value stored
    /// under two matching filters (say `a/+` and `a/#`) appears twice.
    @inlinable
    public func matches(_ topic: TopicName) -> [Value] {
        var result: [Value] = []
        forEachMatch(topic) { _, value in result.append(value) }
        return result
    }
}

// MARK: - Storage

extension TopicFilterTrie {
    /// The values stored under one filter proper.
    @usableFromInline
    struct Entry: Sendable {
        /// The filter proper, handed to `forEachMatch`'s body.
        @usableFromInline var filter: String
        @usableFromInline var values: Set<Value>

        init(filter: String) {
            self.filter = filter
            self.values = []
        }
    }

    /// How a node hangs off its parent, so that pruning can unlink it.
    @usableFromInline
    enum Edge: Sendable {
        case root
        case literal(TopicLevelKey)
        case singleLevelWildcard
    }

    /// One level of the wildcard-filter trie.
    @usableFromInline
    struct Node: Sendable {
        /// Children by literal level.
        @usableFromInline var children: [TopicLevelKey: Int] = [:]
        /// The `+` child.
        @usableFromInline var singleLevelChild: Int?
        /// Filters that end at this node (for example `a/+` at the node reached by `a`, `+`).
        @usableFromInline var exactEntry: Entry?
        /// Filters that are this node's path followed by `/#` (`#` itself at the root); they match the
        /// node's path and everything below it.
        @usableFromInline var multiLevelEntry: Entry?
        @usableFromInline var parent: Int
        @usableFromInline var edge: Edge

        init(parent: Int, edge: Edge) {
            self.parent = parent
            self.edge = edge
        }

        var isUnused: Bool {
            children.isEmpty && singleLevelChild == nil && exactEntry == nil && multiLevelEntry == nil
        }
    }

    /// A pending step of the match walk: `nodeIndex` has consumed the topic bytes before `levelStart`.
    /// Trivial, so the walk's stack needs no deinitialization.
    @usableFromInline
    struct Frame {
        @usableFromInline var nodeIndex: Int
        @usableFromInline var levelStart: Int
        /// `false` once every level of the topic is consumed (as opposed to standing on an empty last level).
        @usableFromInline var hasLevel: Bool

        @inlinable
        init(nodeIndex: Int, levelStart: Int, hasLevel: Bool) {
            self.nodeIndex = nodeIndex
            self.levelStart = levelStart
            self.hasLevel = hasLevel
        }
    }

    @inlinable static var rootIndex: Int { 0 }

    @inlinable
    static func isWildcard(_ level: Substring.UTF8View, _ wildcard: UInt8) -> Bool {
        level.count == 1 && level.first == wildcard
    }
}

// MARK: - Matching

extension TopicFilterTrie {
    /// Looks the whole topic up among the exact filters, then walks the wildcard trie depth first along
    /// the topic's levels. `topic` must stay valid for the call; keys borrow from it.
    @inlinable
    func forEachMatch(topicBytes topic: UnsafeRawBufferPointer, _ body: (_ filter: String, _ value: Value) -> Void) {
        if !exactFilters.isEmpty, let entry = exactFilters[TopicLevelKey(borrowing: topic)] {
            for value in entry.values { body(entry.filter, value) }
        }
        guard wildcardFilterCount > 0 else { return }

        // Each step pushes at most two frames one level deeper, so the stack never holds more than one
        // frame per topic level plus one; a topic has (number of '/') + 1 levels.
        var levelCount = 1
        for byte in topic where byte == TopicBytes.levelSeparator { levelCount += 1 }
        let capacity = levelCount + 1
        // [MQTT-4.7.2-1] '+' or '#' as the first level must not match a topic starting with '$'.
        let isSystemTopic = topic.first == TopicBytes.dollar

        withUnsafeTemporaryAllocation(of: Frame.self, capacity: capacity) { stack in
            stack.initializeElement(at: 0, to: Frame(nodeIndex: Self.rootIndex, levelStart: 0, hasLevel: true))
            var stackCount = 1
            while stackCount > 0 {
                stackCount -= 1
                let frame = stack[stackCount]
                let nodeIndex = frame.nodeIndex
                let wildcardsAllowed = !(isSystemTopic && nodeIndex == Self.rootIndex)

                // 'x/#' matches 'x' and everything below it.
                if wildcardsAllowed, let entry = nodes[nodeIndex].multiLevelEntry {
                    for value in entry.values { body(entry.filter, value) }
                }
                guard frame.hasLevel else {
                    if let entry = nodes[nodeIndex].exactEntry {
                        for value in entry.values { body(entry.filter, value) }
                    }
                    continue
                }

                var levelEnd = frame.levelStart
                while levelEnd < topic.count && topic[levelEnd] != TopicBytes.levelSeparator {
                    levelEnd += 1
                }
                let nextHasLevel = levelEnd < topic.count
                let nextLevelStart = nextHasLevel ? levelEnd + 1 : levelEnd

                if wildcardsAllowed, let plusIndex = nodes[nodeIndex].singleLevelChild {
                    precondition(stackCount < capacity, "topic filter trie walk exceeded its bound")
                    stack.initializeElement(
                        at: stackCount,
                        to: Frame(nodeIndex: plusIndex, levelStart: nextLevelStart, hasLevel: nextHasLevel)
                    )
                    stackCount += 1
                }
                if !nodes[nodeIndex].children.isEmpty {
                    let level = UnsafeRawBufferPointer(rebasing: topic[frame.levelStart..<levelEnd])
                    if let childIndex = nodes[nodeIndex].children[TopicLevelKey(borrowing: level)] {
                        precondition(stackCount < capacity, "topic filter trie walk exceeded its bound")
                        stack.initializeElement(
                            at: stackCount,
                            to: Frame(nodeIndex: childIndex, levelStart: nextLevelStart, hasLevel: nextHasLevel)
                        )
                        stackCount += 1
                    }
                }
            }
        }
    }
}

// MARK: - Mutation helpers

extension TopicFilterTrie {
    /// Where a wildcard filter's entry lives, or `nil` if its path is not in the trie.
    func locate(_ filter: TopicFilter) -> (nodeIndex: Int, isMultiLevel: Bool)? {
        var nodeIndex = Self.rootIndex
        var levels = TopicLevelIterator(filter.filter.utf8[...])
        while let level = levels.next() {
            if Self.isWildcard(level, TopicBytes.multiLevelWildcard) {
                return (nodeIndex, true)
            }
            let next: Int?
            if Self.isWildcard(level, TopicBytes.singleLevelWildcard) {
                next = nodes[nodeIndex].singleLevelChild
            } else {
                next = child(of: nodeIndex, level: level)
            }
            guard let next else { return nil }
            nodeIndex = next
        }
        return (nodeIndex, false)
    }

    /// The literal child of `parentIndex` for `level`, if any.
    func child(of parentIndex: Int, level: Substring.UTF8View) -> Int? {
        TopicBytes.withContiguousBytes(level) { bytes in
            nodes[parentIndex].children[TopicLevelKey(borrowing: bytes)]
        }
    }

    mutating func childCreatingIfNeeded(of parentIndex: Int, level: Substring.UTF8View) -> Int {
        if Self.isWildcard(level, TopicBytes.singleLevelWildcard) {
            if let existing = nodes[parentIndex].singleLevelChild { return existing }
            let child = allocateNode(Node(parent: parentIndex, edge: .singleLevelWildcard))
            nodes[parentIndex].singleLevelChild = child
            return child
        }
        if let existing = child(of: parentIndex, level: level) { return existing }
        let key = TopicLevelKey(copying: level)
        let child = allocateNode(Node(parent: parentIndex, edge: .literal(key)))
        nodes[parentIndex].children[key] = child
        return child
    }

    mutating func allocateNode(_ node: Node) -> Int {
        if let reused = freeNodeIndices.popLast() {
            nodes[reused] = node
            return reused
        }
        nodes.append(node)
        return nodes.count - 1
    }

    /// Unlinks and frees `nodeIndex` and then its ancestors for as long as they hold nothing.
    mutating func prune(from nodeIndex: Int) {
        var current = nodeIndex
        while current != Self.rootIndex && nodes[current].isUnused {
            let parent = nodes[current].parent
            switch nodes[current].edge {
            case .root:
                preconditionFailure("only the root hangs off nothing")
            case .literal(let key):
                nodes[parent].children[key] = nil
            case .singleLevelWildcard:
                nodes[parent].singleLevelChild = nil
            }
            nodes[current] = Node(parent: Self.rootIndex, edge: .root)
            freeNodeIndices.append(current)
            current = parent
        }
    }
}
