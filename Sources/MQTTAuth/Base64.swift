import Foundation

/// Standard Base64 (RFC 4648 §4: `A–Z a–z 0–9 + /`, `=` padding), the encoding rocketmq-mqtt's
/// passwords use — Foundation's encoder, as bytes.
enum Base64 {
    /// Encodes `bytes`; the result is ASCII and always a multiple of four bytes long.
    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        Array(Data(bytes).base64EncodedData())
    }
}
