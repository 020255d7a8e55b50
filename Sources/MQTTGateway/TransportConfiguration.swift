/// The listeners of a gateway beside plain MQTT over TCP: MQTT over TLS, MQTT over WebSocket and MQTT over
/// WebSocket on TLS (WSS), read from `connect.conf`. docs/transports.md describes each key.
public struct TransportConfiguration: Sendable, Hashable {
    /// `enableTlsServer`: open the TLS listener on ``tlsPort`` (and WSS on ``secureWebSocketPort`` when
    /// the WebSocket listener is on too). Default `false`.
    public var tlsEnabled: Bool
    /// `mqttTlsPort`; 0 picks a free port. Default 8883.
    public var tlsPort: Int
    /// The certificate, key and CA files and whether clients must present a certificate.
    public var tls: TLSFiles
    /// `useCertificateCommonNameAsUsername`: with mutual TLS, the common name (CN) of the verified client
    /// certificate replaces the CONNECT user name before authentication, as EMQX's `peer_cert_as_username`.
    /// Default `false`.
    public var useCertificateCommonNameAsUsername: Bool
    /// `tlsReloadIntervalSeconds`: how often the certificate files are checked for changes; 0 checks only
    /// on SIGHUP. Default 5.
    public var tlsReloadIntervalSeconds: Int
    /// `enableWebSocketServer`: open the WebSocket listener on ``webSocketPort``. Default `true`.
    public var webSocketEnabled: Bool
    /// `mqttWsPort`; 0 picks a free port. Default 8888.
    public var webSocketPort: Int
    /// `mqttWssPort`: WebSocket over TLS, open when both TLS and WebSocket are enabled; 0 picks a free
    /// port. Default 8884.
    public var secureWebSocketPort: Int
    /// `mqttWsPath`: the HTTP path a WebSocket client upgrades on. Default `/mqtt`.
    public var webSocketPath: String

    /// The files of the TLS listeners (`tlsCertFile`, `tlsKeyFile`, `tlsCaFile`, `needClientAuth`).
    public struct TLSFiles: Sendable, Hashable {
        /// PEM certificate chain, the server's certificate first.
        public var certificateFile: String
        /// PEM private key of the certificate.
        public var privateKeyFile: String
        /// PEM CA bundle client certificates are verified against; empty when not needed.
        public var certificateAuthorityFile: String
        /// Mutual TLS: a client without a certificate signed by ``certificateAuthorityFile`` is refused
        /// in the handshake.
        public var needClientAuth: Bool

        public init(certificateFile: String = "", privateKeyFile: String = "", certificateAuthorityFile: String = "", needClientAuth: Bool = false) {
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
            self.certificateAuthorityFile = certificateAuthorityFile
            self.needClientAuth = needClientAuth
        }
    }

    public init(
        tlsEnabled: Bool = false,
        tlsPort: Int = 8883,
        tls: TLSFiles = TLSFiles(),
        useCertificateCommonNameAsUsername: Bool = false,
        tlsReloadIntervalSeconds: Int = 5,
        webSocketEnabled: Bool = true,
        webSocketPort: Int = 8888,
        secureWebSocketPort: Int = 8884,
        webSocketPath: String = "/mqtt"
    ) {
        self.tlsEnabled = tlsEnabled
        self.tlsPort = tlsPort
        self.tls = tls
        self.useCertificateCommonNameAsUsername = useCertificateCommonNameAsUsername
        self.tlsReloadIntervalSeconds = tlsReloadIntervalSeconds
        self.webSocketEnabled = webSocketEnabled
        self.webSocketPort = webSocketPort
        self.secureWebSocketPort = secureWebSocketPort
        self.webSocketPath = webSocketPath
    }

    /// Only the plain TCP listener (in-process tests that bind many gateways).
    public static let tcpOnly = TransportConfiguration(webSocketEnabled: false)

    /// `true` when the WSS listener is to be opened.
    public var secureWebSocketEnabled: Bool { tlsEnabled && webSocketEnabled }

    /// Reads the keys from the properties of `connect.conf`; missing keys take their defaults.
    /// - Throws: a message naming the key when a value is malformed or TLS lacks its files.
    public init(properties: [String: String]) throws(GatewayConfiguration.LoadError) {
        let defaults = TransportConfiguration()
        self.tlsEnabled = try Self.boolean(properties, "enableTlsServer", default: defaults.tlsEnabled)
        self.tlsPort = try Self.port(properties, "mqttTlsPort", default: defaults.tlsPort)
        self.tls = TLSFiles(
            certificateFile: properties["tlsCertFile"] ?? "",
            privateKeyFile: properties["tlsKeyFile"] ?? "",
            certificateAuthorityFile: properties["tlsCaFile"] ?? "",
            needClientAuth: try Self.boolean(properties, "needClientAuth", default: false)
        )
        self.useCertificateCommonNameAsUsername = try Self.boolean(
            properties, "useCertificateCommonNameAsUsername", default: defaults.useCertificateCommonNameAsUsername
        )
        self.tlsReloadIntervalSeconds = try Self.integer(
            properties, "tlsReloadIntervalSeconds", default: defaults.tlsReloadIntervalSeconds, range: 0...86_400
        )
        self.webSocketEnabled = try Self.boolean(properties, "enableWebSocketServer", default: defaults.webSocketEnabled)
        self.webSocketPort = try Self.port(properties, "mqttWsPort", default: defaults.webSocketPort)
        self.secureWebSocketPort = try Self.port(properties, "mqttWssPort", default: defaults.secureWebSocketPort)
        let path = properties["mqttWsPath"].flatMap { $0.isEmpty ? nil : $0 } ?? defaults.webSocketPath
        guard path.hasPrefix("/") else {
            throw .init(message: "connect.conf: mqttWsPath=\(path), expected a path starting with /")
        }
        self.webSocketPath = path
        if tlsEnabled {
            guard !tls.certificateFile.isEmpty, !tls.privateKeyFile.isEmpty else {
                throw .init(message: "connect.conf: enableTlsServer=true needs tlsCertFile and tlsKeyFile")
            }
            if tls.needClientAuth, tls.certificateAuthorityFile.isEmpty {
                throw .init(message: "connect.conf: needClientAuth=true needs tlsCaFile")
            }
        }
    }

    private static func boolean(_ properties: [String: String], _ key: String, default defaultValue: Bool) throws(GatewayConfiguration.LoadError) -> Bool {
        switch properties[key]?.lowercased() {
        case nil, "": return defaultValue
        case "true": return true
        case "false": return false
        case .some(let text): throw .init(message: "connect.conf: \(key)=\(text), expected true or false")
        }
    }

    private static func port(_ properties: [String: String], _ key: String, default defaultValue: Int) throws(GatewayConfiguration.LoadError) -> Int {
        try integer(properties, key, default: defaultValue, range: 0...65_535)
    }

    private static func integer(
        _ properties: [String: String], _ key: String, default defaultValue: Int, range: ClosedRange<Int>
    ) throws(GatewayConfiguration.LoadError) -> Int {
        guard let text = properties[key], !text.isEmpty else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw .init(message: "connect.conf: \(key)=\(text), expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
