import ArgumentParser
import Foundation
import Remoting

/// `-n` and `--timeout-ms`, shared by every command that talks to name servers.
struct NameServerOptions: ParsableArguments {
    static let defaultAddress = "127.0.0.1:9876"

    @Option(
        name: [.customShort("n"), .customLong("namesrv-addr")],
        help: ArgumentHelp("Name servers, \"host:port;host:port\" (default: $NAMESRV_ADDR, else \(defaultAddress)).", valueName: "addresses")
    )
    var namesrvAddr: String?

    @Option(name: .customLong("timeout-ms"), help: "How long to wait for each name server, in milliseconds.")
    var timeoutMilliseconds: Int = 3_000

    /// The name servers, in the order given.
    var addresses: [RemotingAddress] {
        get throws {
            let environment = ProcessInfo.processInfo.environment["NAMESRV_ADDR"].flatMap { $0.isEmpty ? nil : $0 }
            let text = namesrvAddr ?? environment ?? Self.defaultAddress
            let parts = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !parts.isEmpty else { throw ValidationError("no name server address in \"\(text)\"") }
            return try parts.map { part in
                guard let address = RemotingAddress(parsing: part) else {
                    throw ValidationError("name server address \"\(part)\" is not host:port")
                }
                return address
            }
        }
    }

    func validate() throws {
        guard (1...600_000).contains(timeoutMilliseconds) else { throw ValidationError("--timeout-ms must be 1...600000") }
        _ = try addresses
    }
}
