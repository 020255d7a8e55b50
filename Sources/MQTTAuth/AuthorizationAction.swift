/// What a client asks to do with a topic, as an ACL sees it.
public enum AuthorizationAction: Sendable, Hashable, CustomStringConvertible {
    /// Send a PUBLISH to a topic name (a will counts as one, checked when the will is accepted).
    case publish
    /// SUBSCRIBE to a topic filter (for a shared subscription, the filter after `$share/{ShareName}/`).
    case subscribe

    public var description: String {
        switch self {
        case .publish: "publish"
        case .subscribe: "subscribe"
        }
    }
}
