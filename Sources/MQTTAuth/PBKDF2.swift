import Crypto
import _CryptoExtras

/// PBKDF2 with HMAC-SHA256 (RFC 8018 §5.2), from swift-crypto (BoringSSL underneath). The password file
/// chooses its own iteration count, so the unchecked entry point is used: `PasswordFileEntry` bounds the
/// count instead (1 ... 10,000,000).
enum PBKDF2 {
    /// Derives `keyByteCount` bytes from `password` and `salt` with `iterations` rounds.
    static func deriveSHA256(password: [UInt8], salt: [UInt8], iterations: Int, keyByteCount: Int) -> [UInt8] {
        precondition(iterations >= 1, "PBKDF2 needs at least one iteration")
        precondition(keyByteCount >= 1, "PBKDF2 needs a positive key length")
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: salt, using: .sha256, outputByteCount: keyByteCount, unsafeUncheckedRounds: iterations
            )
            return key.withUnsafeBytes { Array($0) }
        } catch {
            // Only invalid parameters make BoringSSL fail, and they were checked above.
            preconditionFailure("PBKDF2 failed: \(error)")
        }
    }
}
