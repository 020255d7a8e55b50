import NameServer
import Remoting

/// Runs one command against the name servers of `-n`: writes to all of them, reads from the first that
/// answers.
struct AdminSession {
    let command: String
    let addresses: [RemotingAddress]
    let remoting: RemotingClient
    let timeout: Duration

    init(command: String, options: NameServerOptions) throws {
        self.command = command
        self.addresses = try options.addresses
        self.timeout = .milliseconds(options.timeoutMilliseconds)
        self.remoting = RemotingClient(configuration: .init(connectTimeout: timeout, requestTimeout: timeout))
    }

    func client(_ address: RemotingAddress) -> RemotingNameServerClient {
        RemotingNameServerClient(address: address, remotingClient: remoting, timeout: timeout)
    }

    /// Runs `operation` on every name server at once and prints each success line in the order the
    /// servers were given. Throws when any server failed, naming each failure (a partial failure says
    /// where it did succeed, so the operator knows what to repair).
    func write(_ operation: @escaping @Sendable (RemotingNameServerClient) async throws(NameServerError) -> String) async throws {
        let results = await withTaskGroup(of: (Int, Result<String, NameServerError>).self) { group in
            for (index, address) in addresses.enumerated() {
                let client = client(address)
                group.addTask {
                    do throws(NameServerError) {
                        return (index, .success(try await operation(client)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results = [Result<String, NameServerError>?](repeating: nil, count: addresses.count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
        await remoting.shutdown()
        var succeeded: [String] = []
        var failed: [String] = []
        for (address, result) in zip(addresses, results) {
            switch result {
            case .success(let line):
                print(line)
                succeeded.append("\(address)")
            case .failure(let error):
                failed.append("\(address) (\(error))")
            }
        }
        guard !failed.isEmpty else { return }
        if succeeded.isEmpty {
            throw AdminFailure("\(command) failed on \(failed.joined(separator: ", "))")
        }
        throw AdminFailure(
            "partial failure: \(command) failed on \(failed.count) of \(addresses.count) name servers: \(failed.joined(separator: ", "))"
                + "; succeeded on \(succeeded.joined(separator: ", "))"
        )
    }

    /// Runs `operation` on the first name server that answers. A server that cannot be reached is
    /// skipped; an answer (even an error) ends the search.
    func read<T: Sendable>(_ operation: (RemotingNameServerClient) async throws(NameServerError) -> T) async throws -> T {
        var unreachable: [String] = []
        for address in addresses {
            do {
                let result = try await operation(client(address))
                await remoting.shutdown()
                return result
            } catch {
                if case .unavailable = error {
                    unreachable.append("\(error)")
                    continue
                }
                await remoting.shutdown()
                throw AdminFailure(addresses.count == 1 ? "\(error)" : "\(address): \(error)")
            }
        }
        await remoting.shutdown()
        throw AdminFailure(
            addresses.count == 1 ? unreachable[0] : "no name server answered: \(unreachable.joined(separator: "; "))"
        )
    }
}
