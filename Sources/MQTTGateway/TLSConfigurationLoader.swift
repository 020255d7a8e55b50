import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import UnixSignals

/// Builds the TLS server context of the TLS and WSS listeners from the files named in connect.conf and
/// keeps it current: on SIGHUP and when the files' contents change (checked every
/// `tlsReloadIntervalSeconds`), a new context is built and new connections use it; connections already
/// open keep the one they started with. A set of files that does not load (a key that does not match
/// the new certificate while an operator is still copying files) is logged and the old context stays.
final class TLSConfigurationLoader: Sendable {
    let files: TransportConfiguration.TLSFiles
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let watchers = NIOLockedValueBox<[Task<Void, Never>]>([])

    private struct State {
        var context: NIOSSLContext
        /// The bytes of the certificate, key and CA files the context was built from.
        var loadedContents: [Data?]
        /// The contents that last failed to load, so one broken set is logged once, not every poll.
        var failedContents: [Data?]?
    }

    /// What was loaded, for the log.
    struct Loaded {
        var context: NIOSSLContext
        var contents: [Data?]
        var serialNumberHex: String
        var subject: String
    }

    /// Loads the files; throws when they do not make a context (the node does not start then).
    init(files: TransportConfiguration.TLSFiles, logger: Logger) throws {
        self.files = files
        self.logger = logger
        let loaded = try Self.load(files)
        state = NIOLockedValueBox(State(context: loaded.context, loadedContents: loaded.contents, failedContents: nil))
        logger.info("TLS certificate loaded", metadata: [
            "certificate": "\(files.certificateFile)", "serial": "\(loaded.serialNumberHex)", "subject": "\(loaded.subject)",
            "needClientAuth": "\(files.needClientAuth)",
        ])
    }

    /// The context for a connection accepted now.
    var context: NIOSSLContext { state.withLockedValue { $0.context } }

    /// Builds a context from `files`: TLS 1.2 at least; with `needClientAuth` a client certificate signed
    /// by the CA file is required, otherwise one is verified if the client offers it and a CA file is set.
    static func load(_ files: TransportConfiguration.TLSFiles) throws -> Loaded {
        let contents = readContents(files)
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificateFile)
        guard let leaf = chain.first else {
            throw LoadError(message: "\(files.certificateFile) holds no certificate")
        }
        let key = try NIOSSLPrivateKey(file: files.privateKeyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        if !files.certificateAuthorityFile.isEmpty {
            // Read now, so a missing or broken CA file fails here and not in every handshake.
            let authorities = try NIOSSLCertificate.fromPEMFile(files.certificateAuthorityFile)
            guard !authorities.isEmpty else {
                throw LoadError(message: "\(files.certificateAuthorityFile) holds no certificate")
            }
            configuration.trustRoots = .certificates(authorities)
            // Client certificates name no host: their chain and validity are checked, not a host name.
            configuration.certificateVerification = files.needClientAuth ? .noHostnameVerification : .optionalVerification
        } else {
            configuration.certificateVerification = .none
        }
        let context = try NIOSSLContext(configuration: configuration)
        return Loaded(
            context: context, contents: contents,
            serialNumberHex: leaf.serialNumber.map { String(format: "%02x", $0) }.joined(),
            subject: TLSClientCertificate(leaf).subject
        )
    }

    struct LoadError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    private static func readContents(_ files: TransportConfiguration.TLSFiles) -> [Data?] {
        [files.certificateFile, files.privateKeyFile, files.certificateAuthorityFile].map { path in
            path.isEmpty ? nil : FileManager.default.contents(atPath: path)
        }
    }

    /// Loads the files again if `force` or their contents changed; returns whether a new context is in use.
    @discardableResult
    func reload(reason: String, force: Bool) -> Bool {
        let contents = Self.readContents(files)
        let skip = state.withLockedValue { state in
            !force && (state.loadedContents == contents || state.failedContents == contents)
        }
        guard !skip else { return false }
        do {
            let loaded = try Self.load(files)
            state.withLockedValue {
                $0.context = loaded.context
                $0.loadedContents = loaded.contents
                $0.failedContents = nil
            }
            logger.info("TLS certificate reloaded", metadata: [
                "reason": "\(reason)", "certificate": "\(files.certificateFile)", "serial": "\(loaded.serialNumberHex)",
                "subject": "\(loaded.subject)",
            ])
            return true
        } catch {
            state.withLockedValue { $0.failedContents = contents }
            logger.error("TLS certificate reload failed; new connections keep the previous certificate", metadata: [
                "reason": "\(reason)", "error": "\(error)",
            ])
            return false
        }
    }

    /// Starts reloading on SIGHUP and, when `intervalSeconds` > 0, on file changes.
    func startWatching(intervalSeconds: Int) {
        // SIGHUP ends a process by default; ignore it at once (the signal source below still sees it),
        // so a SIGHUP that comes before the watcher task runs does not stop the node.
        signal(SIGHUP, SIG_IGN)
        var tasks: [Task<Void, Never>] = []
        tasks.append(Task { [self] in
            // A supervisor may start the node with SIGHUP blocked; unblock it for the signal source's thread.
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGHUP)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                reload(reason: "SIGHUP", force: true)
            }
        })
        if intervalSeconds > 0 {
            tasks.append(Task { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(intervalSeconds))
                    if Task.isCancelled { return }
                    reload(reason: "file-change", force: false)
                }
            })
        }
        watchers.withLockedValue { $0.append(contentsOf: tasks) }
    }

    /// Stops the watchers.
    func stopWatching() {
        let tasks = watchers.withLockedValue { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        for task in tasks { task.cancel() }
    }
}
