import NIOCore

/// The local addresses connections are spread over (`--source-ips`). Each address has its own range of
/// ephemeral ports (about 28,000 by default on Linux), so several of them let one machine open more
/// connections to one broker port than one address allows.
struct SourceAddressList: Sendable {
    var addresses: [SocketAddress]

    /// The most addresses one option may name; a range beyond it is a typing error, not a plan.
    static let maxAddresses = 4096

    /// Parses `127.0.0.2-127.0.0.9`, `127.0.0.2,127.0.0.3`, or a mix of both, IPv4 only.
    init(parsing text: String) throws(SourceAddressError) {
        var addresses: [SocketAddress] = []
        for item in text.split(separator: ",") {
            let bounds = item.split(separator: "-", maxSplits: 1).map { $0.trimmingCharacters(in: " ") }
            guard let low = Self.ipv4(bounds[0]) else { throw SourceAddressError(text: String(item)) }
            let high = bounds.count == 2 ? Self.ipv4(bounds[1]) : low
            guard let high, high >= low, high - low < UInt32(Self.maxAddresses) else { throw SourceAddressError(text: String(item)) }
            for value in low...high {
                let dotted = "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
                do {
                    addresses.append(try SocketAddress(ipAddress: dotted, port: 0))
                } catch {
                    throw SourceAddressError(text: dotted)
                }
            }
        }
        guard !addresses.isEmpty, addresses.count <= Self.maxAddresses else { throw SourceAddressError(text: text) }
        self.addresses = addresses
    }

    /// The address of the `index`-th connection: round robin.
    func address(for index: Int) -> SocketAddress {
        addresses[index % addresses.count]
    }

    private static func ipv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }
}

/// A `--source-ips` value that is not a list of IPv4 addresses and ranges.
struct SourceAddressError: Error, Sendable, CustomStringConvertible {
    var text: String
    var description: String { "not an IPv4 address or range: \(text) (expected e.g. 127.0.0.2-127.0.0.9,127.0.1.1)" }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
