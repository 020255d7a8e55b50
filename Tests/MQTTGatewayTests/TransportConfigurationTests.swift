import MQTTGateway
import Testing

/// The TLS and WebSocket keys of connect.conf as `TransportConfiguration` reads them.
@Suite("connect.conf: TLS and WebSocket keys")
struct TransportConfigurationTests {
    @Test("missing keys take the documented defaults: WebSocket on 8888 /mqtt, TLS off on 8883, WSS 8884")
    func defaults() throws {
        let configuration = try TransportConfiguration(properties: [:])
        #expect(configuration == TransportConfiguration())
        #expect(configuration.webSocketEnabled)
        #expect(configuration.webSocketPort == 8888)
        #expect(configuration.webSocketPath == "/mqtt")
        #expect(!configuration.tlsEnabled)
        #expect(configuration.tlsPort == 8883)
        #expect(configuration.secureWebSocketPort == 8884)
        #expect(!configuration.secureWebSocketEnabled)
        #expect(configuration.tlsReloadIntervalSeconds == 5)
        #expect(!configuration.useCertificateCommonNameAsUsername)
    }

    @Test("every key is read")
    func everyKey() throws {
        let configuration = try TransportConfiguration(properties: [
            "enableTlsServer": "true", "mqttTlsPort": "0", "tlsCertFile": "/c.pem", "tlsKeyFile": "/k.pem", "tlsCaFile": "/ca.pem",
            "needClientAuth": "TRUE", "useCertificateCommonNameAsUsername": "true", "tlsReloadIntervalSeconds": "0",
            "enableWebSocketServer": "false", "mqttWsPort": "1", "mqttWssPort": "2", "mqttWsPath": "/ws",
        ])
        #expect(configuration == TransportConfiguration(
            tlsEnabled: true, tlsPort: 0,
            tls: .init(certificateFile: "/c.pem", privateKeyFile: "/k.pem", certificateAuthorityFile: "/ca.pem", needClientAuth: true),
            useCertificateCommonNameAsUsername: true, tlsReloadIntervalSeconds: 0,
            webSocketEnabled: false, webSocketPort: 1, secureWebSocketPort: 2, webSocketPath: "/ws"
        ))
        // WSS needs both.
        #expect(!configuration.secureWebSocketEnabled)
    }

    @Test("refused: TLS without certificate or key, mTLS without CA, bad booleans, ports and paths", arguments: [
        ["enableTlsServer": "true"],
        ["enableTlsServer": "true", "tlsCertFile": "/c.pem"],
        ["enableTlsServer": "true", "tlsCertFile": "/c.pem", "tlsKeyFile": "/k.pem", "needClientAuth": "true"],
        ["enableTlsServer": "yes"],
        ["mqttWsPort": "65536"],
        ["mqttWssPort": "-1"],
        ["mqttWsPath": "mqtt"],
        ["tlsReloadIntervalSeconds": "soon"],
    ])
    func refused(properties: [String: String]) {
        #expect(throws: GatewayConfiguration.LoadError.self) {
            _ = try TransportConfiguration(properties: properties)
        }
    }
}
