import MQTTAuth
import MQTTCore

/// How one MQTT connection reached the gateway: the listener it came in on and, for TLS connections, the
/// client certificate the handshake verified. Authentication sees it through ``authRequest(for:remoteAddress:)``.
struct ConnectionTransport {
    /// The listener of the connection.
    enum Kind: String {
        case tcp
        case tls
        case webSocket = "ws"
        case secureWebSocket = "wss"
    }

    var kind: Kind
    /// The verified client certificate (mutual TLS, or a certificate offered on an optional-verification
    /// listener); nil for plain listeners and clients that sent none.
    var clientCertificate: TLSClientCertificate?
    /// `useCertificateCommonNameAsUsername` of connect.conf.
    var useCertificateCommonNameAsUsername: Bool

    init(kind: Kind, clientCertificate: TLSClientCertificate? = nil, useCertificateCommonNameAsUsername: Bool = false) {
        self.kind = kind
        self.clientCertificate = clientCertificate
        self.useCertificateCommonNameAsUsername = useCertificateCommonNameAsUsername
    }

    /// What the authenticator is asked for `connect`: the certificate's subject and common name go with
    /// the CONNECT credentials, and with `useCertificateCommonNameAsUsername` the common name is the user name.
    func authRequest(for connect: ConnectPacket, remoteAddress: String?) -> AuthRequest {
        var username = connect.username
        if useCertificateCommonNameAsUsername, let commonName = clientCertificate?.commonName {
            username = commonName
        }
        return AuthRequest(
            clientIdentifier: connect.clientIdentifier, username: username, password: connect.password,
            protocolVersion: connect.protocolVersion.rawValue, remoteAddress: remoteAddress,
            tlsClientCertificateSubject: clientCertificate?.subject,
            tlsClientCertificateCommonName: clientCertificate?.commonName
        )
    }
}
