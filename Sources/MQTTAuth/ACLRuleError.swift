/// Why a line is not a valid ``ACLRule``.
public struct ACLRuleError: Error, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
