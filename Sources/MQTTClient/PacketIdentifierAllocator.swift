/// Hands out packet identifiers for PUBLISH (QoS > 0), SUBSCRIBE and UNSUBSCRIBE: non-zero and not
/// currently in use ([MQTT-2.2.1-3]), cycling through 1...65535 so a just-released identifier is not
/// reused at once (a late acknowledgement for it then cannot be mistaken for the new packet's).
struct PacketIdentifierAllocator {
    private(set) var inUse: Set<UInt16> = []
    private var next: UInt16 = 1

    /// The number of identifiers the protocol has: 1...65535.
    static let capacity = Int(UInt16.max)

    /// A free identifier, now marked in use, or nil when all 65,535 are in use.
    mutating func allocate() -> UInt16? {
        guard inUse.count < Self.capacity else { return nil }
        // Terminates within 65,535 steps: at least one identifier is free.
        var candidate = next
        while inUse.contains(candidate) {
            candidate = Self.successor(of: candidate)
        }
        inUse.insert(candidate)
        next = Self.successor(of: candidate)
        return candidate
    }

    /// Marks `identifier` free again, once its flow is complete.
    mutating func release(_ identifier: UInt16) {
        inUse.remove(identifier)
    }

    func isInUse(_ identifier: UInt16) -> Bool {
        inUse.contains(identifier)
    }

    private static func successor(of identifier: UInt16) -> UInt16 {
        identifier == .max ? 1 : identifier + 1
    }
}
