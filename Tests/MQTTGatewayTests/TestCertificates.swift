import Foundation

/// A throwaway PKI made with the `openssl` command line in a folder of its own: a CA, a server
/// certificate for `localhost` / 127.0.0.1, a client certificate, an expired client certificate (signed by
/// the CA) and an untrusted one (self-signed). EC P-256 keys: quick to make on a small machine.
struct TestCertificates: Sendable {
    static let openssl = NodeProcess.executableOnPath("openssl")

    /// The folder with every file; removed by `remove()`.
    let directory: String
    var caFile: String { directory + "/ca.pem" }
    var serverCertificateFile: String { directory + "/server.pem" }
    var serverKeyFile: String { directory + "/server.key" }
    var clientCertificateFile: String { directory + "/client.pem" }
    var clientKeyFile: String { directory + "/client.key" }
    var expiredCertificateFile: String { directory + "/expired.pem" }
    var expiredKeyFile: String { directory + "/expired.key" }
    var untrustedCertificateFile: String { directory + "/untrusted.pem" }
    var untrustedKeyFile: String { directory + "/untrusted.key" }

    /// The common name of the client certificate.
    static let clientCommonName = "device-7"

    /// Makes every file in a new temporary folder.
    static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mqtt-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        do {
            try await certificates.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                        "-keyout", directory + "/ca.key", "-out", certificates.caFile, "-days", "2", "-subj", "/CN=Test CA"])
            try await certificates.issueServerCertificate(commonName: "localhost")
            try await certificates.issue(subject: "/O=Example/CN=\(clientCommonName)", name: "client", days: 2)
            // -days -1: notAfter lies a day before notBefore, so the certificate has expired already.
            try await certificates.issue(subject: "/CN=expired-device", name: "expired", days: -1)
            try await certificates.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                        "-keyout", certificates.untrustedKeyFile, "-out", certificates.untrustedCertificateFile,
                                        "-days", "2", "-subj", "/CN=\(clientCommonName)"])
        } catch {
            certificates.remove()
            throw error
        }
        return certificates
    }

    /// (Re)writes `server.pem` / `server.key`: a new key and certificate for `commonName`, valid for
    /// localhost and 127.0.0.1, signed by the CA. The certificate is written last, after the key.
    func issueServerCertificate(commonName: String) async throws {
        let extensions = directory + "/server.ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        try await issue(subject: "/CN=\(commonName)", name: "server-next", days: 2, extensionsFile: extensions)
        // Renamed into place, as a deployment tool would: a reader never sees half a file.
        try replace(serverKeyFile, with: directory + "/server-next.key")
        try replace(serverCertificateFile, with: directory + "/server-next.pem")
    }

    private func replace(_ path: String, with newPath: String) throws {
        guard rename(newPath, path) == 0 else { throw NodeProcess.Failure("rename \(newPath) → \(path): errno \(errno)") }
    }

    private func issue(subject: String, name: String, days: Int, extensionsFile: String? = nil) async throws {
        let key = directory + "/\(name).key"
        let request = directory + "/\(name).csr"
        try await run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", key, "-out", request, "-subj", subject])
        var arguments = ["x509", "-req", "-in", request, "-CA", caFile, "-CAkey", directory + "/ca.key",
                         "-CAcreateserial", "-out", directory + "/\(name).pem", "-days", "\(days)"]
        if let extensionsFile { arguments += ["-extfile", extensionsFile] }
        try await run(arguments)
    }

    private func run(_ arguments: [String]) async throws {
        guard let openssl = Self.openssl else { throw NodeProcess.Failure("openssl is not on PATH") }
        let result = try await SpawnedProcess.run(
            executable: openssl, arguments: arguments, environment: NodeProcess.childEnvironment(),
            outputPathPrefix: directory + "/openssl-\(UUID().uuidString)", timeout: .seconds(30)
        )
        guard result.status == 0 else {
            throw NodeProcess.Failure("openssl \(arguments.joined(separator: " ")) exited with \(result.status): \(result.standardError)")
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
