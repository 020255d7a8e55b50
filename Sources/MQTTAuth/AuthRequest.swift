import NIOCore

/// The credentials one CONNECT presented, and how the client reached the server.
///
/// Kept free of the MQTT codec's types so that `MQTTAuth` depends on nothing but Crypto and NIO.
public struct AuthRequest: Sendable, Hashable {
    /// The client identifier exactly as sent in CONNECT (empty when the client asked the server to assign one).
    public var clientIdentifier: String
    /// The CONNECT user name, or `nil` when the user name flag was not set.
    ///
    /// `nil` and `""` differ: only `nil` counts as "no user name" for anonymous access.
    public var username: String?
    /// The CONNECT password, or `nil` when the password flag was not set.
    ///
    /// Binary data: MQTT does not require a password to be text, so it is never decoded as UTF-8.
    public var password: ByteBuffer?
    /// The protocol level byte of CONNECT: 3 for MQTT 3.1, 4 for 3.1.1, 5 for 5.0.
    public var protocolVersion: UInt8
    /// The peer's address as the gateway prints it (for example `192.0.2.7:50122`), if known.
    public var remoteAddress: String?
    /// The subject of the TLS client certificate when the connection used mutual TLS, else `nil`.
    ///
    /// The gateway writes it as RFC 4514 does, most specific name first (`CN=device-7,O=Example`). The TLS
    /// handshake has already verified the certificate against `tlsCaFile`, so an `AuthManager` may take it
    /// as proof of identity (allow without a password), or match it against the user name.
    public var tlsClientCertificateSubject: String?
    /// The common name (CN) of the verified TLS client certificate, else `nil`.
    ///
    /// With `useCertificateCommonNameAsUsername=true` in connect.conf the gateway also puts it in ``username``,
    /// so ACL rules and password files keyed by user name apply to certificate holders (docs/transports.md).
    public var tlsClientCertificateCommonName: String?

    /// Creates a request.
    public init(
        clientIdentifier: String,
        username: String? = nil,
        password: ByteBuffer? = nil,
        protocolVersion: UInt8 = 4,
        remoteAddress: String? = nil,
        tlsClientCertificateSubject: String? = nil,
        tlsClientCertificateCommonName: String? = nil
    ) {
        self.clientIdentifier = clientIdentifier
        self.username = username
        self.password = password
        self.protocolVersion = protocolVersion
        self.remoteAddress = remoteAddress
        self.tlsClientCertificateSubject = tlsClientCertificateSubject
        self.tlsClientCertificateCommonName = tlsClientCertificateCommonName
    }

    /// Creates a request whose password is given as bytes.
    public init(
        clientIdentifier: String,
        username: String?,
        passwordBytes: [UInt8]?,
        protocolVersion: UInt8 = 4,
        remoteAddress: String? = nil,
        tlsClientCertificateSubject: String? = nil,
        tlsClientCertificateCommonName: String? = nil
    ) {
        self.init(
            clientIdentifier: clientIdentifier,
            username: username,
            password: passwordBytes.map { ByteBuffer(bytes: $0) },
            protocolVersion: protocolVersion,
            remoteAddress: remoteAddress,
            tlsClientCertificateSubject: tlsClientCertificateSubject,
            tlsClientCertificateCommonName: tlsClientCertificateCommonName
        )
    }

    /// `true` when CONNECT carried neither a user name nor a password: the only case anonymous access covers.
    public var hasNoCredentials: Bool {
        self.username == nil && self.password == nil
    }
}
