import Foundation

/// Where a server application finds the store: the name servers of the cluster (or of a standalone node),
/// as gateways do.
public struct LMQClientConfiguration: Sendable, Hashable {
    /// The name servers, `host:port` each. Default: `NAMESRV_ADDR` from the environment (`host:port;host:port`),
    /// else `127.0.0.1:9876`, where a standalone node's name server listens.
    public var nameServerAddresses: [String]
    /// The primary store node (sessions, offsets, retained messages, queues of first topics without a
    /// route), `host:port`; nil: the first store node registered with the name servers (by address), as a
    /// gateway without `storeNodeAddress` picks it. Default: nil.
    public var storeNodeAddress: String?
    /// How long ``LMQProducer/start(_:logger:)`` and ``LMQConsumer/start(_:group:subscription:options:logger:)``
    /// wait for a store node to register. Default: 10 s.
    public var storeNodeWaitSeconds: Int
    /// Whether sending to a first topic the name servers do not know creates it (routed to the primary
    /// store node), as a gateway with `autoCreateFirstTopic` does. Default: true.
    public var autoCreateFirstTopic: Bool

    public init(
        nameServerAddresses: [String] = LMQClientConfiguration.environmentNameServers(),
        storeNodeAddress: String? = nil,
        storeNodeWaitSeconds: Int = 10,
        autoCreateFirstTopic: Bool = true
    ) {
        self.nameServerAddresses = nameServerAddresses
        self.storeNodeAddress = storeNodeAddress
        self.storeNodeWaitSeconds = storeNodeWaitSeconds
        self.autoCreateFirstTopic = autoCreateFirstTopic
    }

    /// `NAMESRV_ADDR` split at `;` (or `,`), else `127.0.0.1:9876`.
    public static func environmentNameServers() -> [String] {
        let text = ProcessInfo.processInfo.environment["NAMESRV_ADDR"] ?? ""
        let addresses = parseAddresses(text)
        return addresses.isEmpty ? ["127.0.0.1:9876"] : addresses
    }

    /// `host:port;host:port` (or with `,`) as a list, blanks dropped.
    public static func parseAddresses(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == ";" || $0 == "," })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}
