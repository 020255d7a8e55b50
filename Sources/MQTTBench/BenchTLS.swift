import ArgumentParser
import NIOCore
import NIOSSL

/// `--tls` and its companions: shared by every subcommand, through `ConnectionOptions`.
struct TLSOptions: ParsableArguments {
    @Flag(name: .customLong("tls"), help: "Connect over TLS (MQTT's port for it is usually 8883).")
    var enabled = false

    @Option(name: .customLong("cafile"), help: "PEM file of the CAs to trust (default: the system's trust store). Needs --tls.")
    var caFile: String?

    @Flag(help: "Do not verify the broker's certificate or name: for test brokers with self-signed certificates. Needs --tls.")
    var insecure = false

    @Option(name: .customLong("cert"), help: "PEM file of the client certificate (chain) for mutual TLS; with --key. Needs --tls.")
    var certificateFile: String?

    @Option(name: .customLong("key"), help: "PEM file of the client certificate's private key (unencrypted); with --cert.")
    var keyFile: String?

    @Option(name: .customLong("server-name"), help: "Name sent in SNI and checked against the broker's certificate (default: --host). An IP address is not sent in SNI; the certificate is then checked against the address connected to.")
    var serverName: String?

    func validate() throws {
        if !enabled {
            let given = [
                caFile.map { _ in "--cafile" }, insecure ? "--insecure" : nil,
                certificateFile.map { _ in "--cert" }, keyFile.map { _ in "--key" },
                serverName.map { _ in "--server-name" },
            ].compactMap { $0 }
            guard given.isEmpty else { throw ValidationError("\(given.joined(separator: ", ")) needs --tls") }
        }
        guard (certificateFile == nil) == (keyFile == nil) else {
            throw ValidationError("--cert and --key go together")
        }
        if insecure, caFile != nil {
            throw ValidationError("--insecure verifies nothing: --cafile would be ignored")
        }
        if let serverName, serverName.isEmpty || serverName.utf8.count > 255 || serverName.utf8.contains(0) {
            throw ValidationError("--server-name must be 1-255 bytes")
        }
    }

    /// The TLS settings of a run against `host`, or nil without `--tls`. Reads the PEM files now, so that a
    /// missing or malformed file stops the run before any connection is attempted.
    func makeTLS(host: String) throws -> BenchTLS? {
        guard enabled else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if insecure {
            configuration.certificateVerification = .none
        } else if let caFile {
            configuration.trustRoots = .certificates(try Self.certificates(caFile, option: "--cafile"))
        }
        if let certificateFile, let keyFile {
            configuration.certificateChain = try Self.certificates(certificateFile, option: "--cert").map { .certificate($0) }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw BenchTLSError(underlying: "--key \(keyFile): \(error)")
            }
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL checks here that the key belongs to the certificate.
            throw BenchTLSError(underlying: "\(error)" + (certificateFile == nil ? "" : " (does --key belong to --cert?)"))
        }
        return BenchTLS(context: context, serverName: serverName ?? host)
    }

    private static func certificates(_ path: String, option: String) throws -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw BenchTLSError(underlying: "\(option) \(path): \(error)")
        }
        guard !certificates.isEmpty else { throw BenchTLSError(underlying: "\(option) \(path): no PEM certificate in it") }
        return certificates
    }
}

/// The TLS side of a run: one context for every connection (it is thread-safe, and building it reads
/// the files), and the name to ask for.
struct BenchTLS: Sendable {
    let context: NIOSSLContext
    /// Sent in SNI and verified against the certificate's names; nil for an IP address, which SNI
    /// does not carry ([RFC 6066 3]) and which is then verified against the address connected to.
    let sniHostname: String?

    init(context: NIOSSLContext, serverName: String) {
        self.context = context
        self.sniHostname = (try? SocketAddress(ipAddress: serverName, port: 0)) == nil ? serverName : nil
    }

    /// Adds the TLS handler at the front of a new client channel's pipeline, and a handler right after
    /// it that fails `readyPromise` with the TLS error, so that the run reports why a handshake failed
    /// rather than only that the connection closed.
    func addHandlers<Value>(to channel: any Channel, readyPromise: EventLoopPromise<Value>) throws {
        try channel.pipeline.syncOperations.addHandlers(
            try NIOSSLClientHandler(context: context, serverHostname: sniHostname),
            TLSFailureReporter(readyPromise: readyPromise)
        )
    }
}

/// Fails a client's ready promise with the first TLS error seen on its channel. The bench handler then
/// closes the channel; its own "closed before CONNACK" failure comes second and is ignored by the promise.
private final class TLSFailureReporter<Value>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let readyPromise: EventLoopPromise<Value>

    init(readyPromise: EventLoopPromise<Value>) {
        self.readyPromise = readyPromise
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            readyPromise.fail(BenchTLSError(underlying: "\(error)"))
        }
        context.fireErrorCaught(error)
    }
}

/// A TLS handshake (or later TLS) failure, as the run reports it.
struct BenchTLSError: Error, Sendable, CustomStringConvertible {
    var underlying: String
    var description: String { "TLS: \(underlying)" }
}
