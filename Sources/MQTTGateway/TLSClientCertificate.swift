import NIOSSL

/// The parts of a verified TLS client certificate that authentication and ACLs use as an identity.
struct TLSClientCertificate: Sendable, Hashable {
    /// The subject as an RFC 4514 string, most specific first: `CN=device-7,O=Example`.
    var subject: String
    /// The last common name (CN) of the subject, if it has one.
    var commonName: String?

    init(subject: String, commonName: String?) {
        self.subject = subject
        self.commonName = commonName
    }

    init(_ certificate: NIOSSLCertificate) {
        let names = certificate.subjectName
        // RFC 4514 writes the most specific name first; X.509 stores it last.
        self.subject = names.reversed().compactMap { name -> String? in
            guard let key = Self.attributeKey(name.type) else { return nil }
            return "\(key)=\(Self.escaped(name.value))"
        }.joined(separator: ",")
        self.commonName = names.last { $0.type == .commonName }?.value
    }

    private static func attributeKey(_ type: SSLCertificateNameType) -> String? {
        switch type {
        case .commonName: "CN"
        case .organization: "O"
        case .organizationalUnit: "OU"
        case .country: "C"
        case .state: "ST"
        case .city: "L"
        case .emailAddress: "emailAddress"
        case .userId: "UID"
        default: nil
        }
    }

    /// RFC 4514 section 2.4: the characters that would change the structure of the string are escaped.
    private static func escaped(_ value: String) -> String {
        var result = ""
        let lastIndex = value.count - 1
        for (index, character) in value.enumerated() {
            let special = ",+\"\\<>;".contains(character)
                || (index == 0 && (character == " " || character == "#"))
                || (index == lastIndex && character == " ")
            if special { result.append("\\") }
            result.append(character)
        }
        return result
    }
}
