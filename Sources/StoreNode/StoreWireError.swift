/// Why a store-node body could not be decoded: it ended too early, held a value outside its range, or
/// had bytes left over. Offsets count from the start of the body.
public enum StoreWireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The body ended inside `field`.
    case truncated(field: String, offset: Int)
    /// `field` holds a value that is not allowed (an unknown enum value, a count larger than the body...).
    case invalidValue(field: String, offset: Int, reason: String)
    /// The value ended `count` bytes before the body did.
    case trailingBytes(count: Int)

    public var description: String {
        switch self {
        case .truncated(let field, let offset):
            return "store-node body truncated in \(field) at byte \(offset)"
        case .invalidValue(let field, let offset, let reason):
            return "store-node body has an invalid \(field) at byte \(offset): \(reason)"
        case .trailingBytes(let count):
            return "store-node body has \(count) unexpected bytes after its value"
        }
    }
}
