import Foundation
import Testing

/// The real `mqtt-node` on its TLS, WebSocket and WSS listeners (docs/transports.md), driven by
/// `mosquitto_pub` / `mosquitto_sub`, paho-mqtt (`tls_set`, `transport="websockets"`), hand-made WebSocket
/// frames and Python's `ssl`. Certificates are made per test with the `openssl` command line.
@Suite(
    "mqtt-node over TLS and WebSocket",
    .enabled(if: PahoScenario.isAvailable && TestCertificates.openssl != nil, "python3 with paho-mqtt 2.x, openssl and a built mqtt-node are needed"),
    .timeLimit(.minutes(3))
)
struct NodeTransportTests {
    static let versions = ["3.1.1", "5"]

    @Test(
        "mosquitto_pub --cafile and mosquitto_sub --cafile over TLS: messages of both protocol versions arrive",
        .enabled(if: MosquittoClient.isAvailable, "mosquitto_pub and mosquitto_sub are needed")
    )
    func mosquittoOverTLS() async throws {
        try await withTLSNode { node, certificates in
            let port = try await node.listenerPort(.tls)
            let prefix = PahoScenario.makePrefix()
            // A later -p overrides the plain port MosquittoClient puts first.
            let tls = ["-p", "\(port)", "--cafile", certificates.caFile]
            let subscriber = try await MosquittoClient.subscribe(
                node: node, protocolName: "mqttv311", tls + ["-t", "\(prefix)/#", "-q", "1", "-C", "2", "-W", "30", "-F", "MSG %t %p"]
            )
            try await MosquittoClient.publish(node: node, protocolName: "mqttv311", tls + ["-t", "\(prefix)/a", "-m", "v311", "-q", "1"])
            try await MosquittoClient.publish(node: node, protocolName: "mqttv5", tls + ["-t", "\(prefix)/b", "-m", "v5", "-q", "1"])
            #expect(await subscriber.waitForExit(timeout: .seconds(30)) == 0)
            #expect(MosquittoClient.messages(subscriber) == ["\(prefix)/a v311", "\(prefix)/b v5"])
            // Trusting another CA, the client refuses the server: the test CA's certificate is what was checked.
            let untrusting = try await MosquittoClient.run(
                MosquittoClient.pub, node: node, protocolName: "mqttv311",
                ["-p", "\(port)", "--cafile", certificates.untrustedCertificateFile, "-t", "\(prefix)/c", "-m", "x"]
            )
            #expect(untrusting.status != 0)
        }
    }

    @Test("paho-mqtt publish/subscribe round trip on each listener, both protocol versions", arguments: [Listener.tls, .webSocket, .secureWebSocket])
    func pahoRoundTrip(listener: Listener) async throws {
        try await withTLSNode { node, certificates in
            let port = try await node.listenerPort(listener)
            for version in Self.versions {
                let result = try await PahoScenario.run(
                    "transport_roundtrip.py", node: node, version: version,
                    ["--transport", listener.scriptName, "--transport-port", "\(port)", "--cafile", certificates.caFile]
                )
                #expect(result["connected"] == true, "\(listener) \(version): \(result)")
                #expect(result["suback"] == [1])
                #expect(result["received"] == result["sent"], "\(listener) \(version): \(result)")
                #expect(result["sizes"].array.contains(200_000))
            }
            #expect(node.log.contains("transport=\(listener.scriptName)"), "the node's log names the transport")
        }
    }

    @Test("WebSocket framing: subprotocol mqtt answered; a packet over two frames, two packets in one frame; ping, close; wrong path and subprotocol refused", arguments: versions)
    func webSocketFraming(version: String) async throws {
        try await withTLSNode { node, _ in
            let port = try await node.listenerPort(.webSocket)
            let result = try await PahoScenario.run("ws_raw.py", node: node, version: version, ["--transport-port", "\(port)"])
            #expect(result["status"] == 101)
            #expect(result["subprotocol"] == "mqtt")
            let types = result["packets"].array.map { $0["type"].int }
            // CONNACK, SUBACK, then PUBACK (4) and the PUBLISH (3) in either order.
            #expect(types.prefix(2) == [2, 9], "\(result)")
            #expect(Set(types.suffix(2)) == [3, 4], "\(result)")
            #expect(result["packets"][0]["body"].string?.hasPrefix("0000") == true, "CONNACK accepted: \(result)")
            #expect(result["pong"] == result["ping"])
            #expect(result["close"] == 1000)
            #expect(result["closed"] == true)
            #expect(result["wrong_path_status"] == 404)
            #expect(result["wrong_subprotocol_status"] == 400)
        }
    }

    @Test("TLS 1.2 and 1.3 are accepted; a client offering only TLS 1.0/1.1 is refused")
    func tlsVersions() async throws {
        try await withTLSNode { node, certificates in
            let port = try await node.listenerPort(.tls)
            var seen: [String: JSONValue] = [:]
            for maximum in ["1.1", "1.2", "1.3"] {
                seen[maximum] = try await PahoScenario.run(
                    "tls_peer.py", node: node, version: "5", ["--transport-port", "\(port)", "--cafile", certificates.caFile, "--max-tls", maximum]
                )
            }
            #expect(seen["1.1"]?["ok"] == false, "\(seen)")
            #expect(seen["1.2"]?["version"] == "TLSv1.2", "\(seen)")
            #expect(seen["1.3"]?["version"] == "TLSv1.3", "\(seen)")
            #expect(seen["1.3"]?["common_name"] == "localhost")
        }
    }

    @Test("needClientAuth=true: no, expired or untrusted client certificates are refused in the handshake; the CA's works", arguments: [Listener.tls, .secureWebSocket])
    func mutualTLS(listener: Listener) async throws {
        try await withTLSNode(["needClientAuth": "true"]) { node, certificates in
            let port = try await node.listenerPort(listener)
            let base = ["--transport", listener.scriptName, "--transport-port", "\(port)", "--cafile", certificates.caFile]
            let cases: [(name: String, arguments: [String], accepted: Bool)] = [
                ("no certificate", [], false),
                ("expired", ["--certfile", certificates.expiredCertificateFile, "--keyfile", certificates.expiredKeyFile], false),
                ("untrusted", ["--certfile", certificates.untrustedCertificateFile, "--keyfile", certificates.untrustedKeyFile], false),
                ("signed by the CA", ["--certfile", certificates.clientCertificateFile, "--keyfile", certificates.clientKeyFile], true),
            ]
            for (name, arguments, accepted) in cases {
                let result = try await PahoScenario.run("transport_roundtrip.py", node: node, version: "5", base + arguments)
                #expect(result["connected"] == .bool(accepted), "\(listener) \(name): \(result)")
                if accepted {
                    #expect(result["received"] == result["sent"], "\(listener) \(name): \(result)")
                } else {
                    // Refused by TLS, not by a CONNACK: the node never saw a CONNECT.
                    #expect(result["connack"] == .null, "\(listener) \(name): \(result)")
                }
            }
            if listener == .tls {
                // Each refusal is logged with the handshake's reason.
                let log = node.log
                #expect(log.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE"), "no refusal of the missing certificate in the log")
                #expect(log.contains("CERTIFICATE_VERIFY_FAILED"), "no refusal of the expired / untrusted certificates in the log")
            }
        }
    }

    @Test("useCertificateCommonNameAsUsername: the client certificate's CN is the user name the password is checked for", arguments: versions)
    func commonNameAsUsername(version: String) async throws {
        let service = ["allowAnonymous": "false", "username": TestCertificates.clientCommonName, "secretKey": "secret"]
        let connect = ["needClientAuth": "true", "useCertificateCommonNameAsUsername": "true"]
        try await withTLSNode(connect, service: service) { node, certificates in
            let port = try await node.listenerPort(.tls)
            // The CONNECT names another user; the certificate's CN replaces it.
            let base = ["--transport", "tls", "--transport-port", "\(port)", "--cafile", certificates.caFile,
                        "--certfile", certificates.clientCertificateFile, "--keyfile", certificates.clientKeyFile, "--username", "someone-else"]
            let right = try await PahoScenario.run("transport_roundtrip.py", node: node, version: version, base + ["--hmac-secret", "secret"])
            #expect(right["connected"] == true, "\(right)")
            let wrong = try await PahoScenario.run("transport_roundtrip.py", node: node, version: version, base + ["--hmac-secret", "wrong"])
            #expect(wrong["connected"] == false)
            // paho 2 reports 3.1.1's CONNACK 0x04 (bad user name or password) as 5.0's 0x86.
            #expect(wrong["connack"]["code"] == 0x86, "\(wrong)")
        }
    }

    @Test("SIGHUP reloads the certificate: new TLS connections see the new one, the node keeps running")
    func reloadOnSIGHUP() async throws {
        try await withTLSNode(["tlsReloadIntervalSeconds": "0"]) { node, certificates in
            let port = try await node.listenerPort(.tls)
            let before = try await node.peerCertificate(port: port, certificates: certificates)
            #expect(before["common_name"] == "localhost")
            try await certificates.issueServerCertificate(commonName: "localhost-reloaded")
            let pid = try #require(node.pid)
            kill(pid, SIGHUP)
            let reason = try await node.waitForLog("certificate reload", timeout: .seconds(15)) {
                NodeProcess.logValue("reason", onLineContaining: "TLS certificate reloaded", in: $0)
            }
            #expect(reason == "SIGHUP")
            let after = try await node.peerCertificate(port: port, certificates: certificates)
            #expect(after["common_name"] == "localhost-reloaded", "\(after)")
            #expect(after["serial"] != before["serial"])
            #expect(node.pid == pid, "the node still runs")
            // Connections keep working on the new certificate.
            let result = try await PahoScenario.run(
                "transport_roundtrip.py", node: node, version: "5",
                ["--transport", "tls", "--transport-port", "\(port)", "--cafile", certificates.caFile]
            )
            #expect(result["connected"] == true, "\(result)")
        }
    }

    @Test("a changed certificate file is picked up by the poll (tlsReloadIntervalSeconds) without a signal")
    func reloadOnFileChange() async throws {
        try await withTLSNode(["tlsReloadIntervalSeconds": "1"]) { node, certificates in
            let port = try await node.listenerPort(.tls)
            let before = try await node.peerCertificate(port: port, certificates: certificates)
            #expect(before["common_name"] == "localhost")
            try await certificates.issueServerCertificate(commonName: "localhost-polled")
            let reason = try await node.waitForLog("certificate reload", timeout: .seconds(15)) {
                NodeProcess.logValue("reason", onLineContaining: "TLS certificate reloaded", in: $0)
            }
            #expect(reason == "file-change")
            let after = try await node.peerCertificate(port: port, certificates: certificates)
            #expect(after["common_name"] == "localhost-polled", "\(after)")
        }
    }
}

/// The listeners beside plain TCP, by the log line each writes when it is bound.
enum Listener: String, Sendable, CustomTestStringConvertible {
    case tls = "MQTT over TLS listening"
    case webSocket = "MQTT over WebSocket listening"
    case secureWebSocket = "MQTT over secure WebSocket listening"

    /// The `--transport` of transport_roundtrip.py (and the `transport=` the node logs).
    var scriptName: String {
        switch self {
        case .tls: "tls"
        case .webSocket: "ws"
        case .secureWebSocket: "wss"
        }
    }

    var testDescription: String { scriptName }
}

extension NodeProcess {
    /// The bound port of `listener`, from its log line "MQTT over TLS listening address=HOST:PORT".
    func listenerPort(_ listener: Listener) async throws -> Int {
        try await waitForLog(listener.rawValue) {
            Self.logValue("address", onLineContaining: listener.rawValue, in: $0).flatMap(Self.port(of:))
        }
    }

    /// What a fresh TLS handshake with the node shows of its certificate (tls_peer.py).
    func peerCertificate(port: Int, certificates: TestCertificates) async throws -> JSONValue {
        let result = try await PahoScenario.run(
            "tls_peer.py", node: self, version: "5", ["--transport-port", "\(port)", "--cafile", certificates.caFile]
        )
        guard result["ok"] == true else { throw NodeProcess.Failure("TLS handshake failed: \(result)") }
        return result
    }
}

/// Runs `body` against a node with TLS (and so WSS) on, every listener on a free port, certificates of
/// its own; `connect` and `service` are written over connect.conf and service.conf.
func withTLSNode(
    _ connect: [String: String] = [:], service: [String: String] = [:],
    _ body: @Sendable (NodeProcess, TestCertificates) async throws -> Void
) async throws {
    let certificates = try await TestCertificates.make()
    defer { certificates.remove() }
    var settings = [
        "enableTlsServer": "true", "enableWebSocketServer": "true",
        "tlsCertFile": certificates.serverCertificateFile, "tlsKeyFile": certificates.serverKeyFile, "tlsCaFile": certificates.caFile,
    ]
    settings.merge(connect) { $1 }
    try await withNode(NodeProcess.Options(service: service, connect: settings)) { node in
        try await body(node, certificates)
    }
}
