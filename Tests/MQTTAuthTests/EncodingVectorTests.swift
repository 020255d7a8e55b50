@testable import MQTTAuth
import Testing

@Suite("Encodings and key derivation against published vectors")
struct EncodingVectorTests {
    /// RFC 4648 section 10, plus bytes that use the last characters of the alphabet.
    @Test(
        "Base64 matches RFC 4648",
        arguments: [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
        ]
    )
    func base64(input: String, encoded: String) {
        #expect(String(decoding: Base64.encode(Array(input.utf8)), as: UTF8.self) == encoded)
    }

    @Test("Base64 uses '+' and '/' for 62 and 63")
    func base64HighCharacters() {
        #expect(String(decoding: Base64.encode([0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF]), as: UTF8.self) == "+vv8/f7/")
    }

    /// RFC 7914 section 11 (PBKDF2-HMAC-SHA256, 64-byte output).
    @Test("PBKDF2-HMAC-SHA256 matches RFC 7914, one iteration")
    func pbkdf2OneIteration() {
        let derived = PBKDF2.deriveSHA256(
            password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, keyByteCount: 64
        )
        #expect(
            Hex.encode(derived)
                == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        )
    }

    @Test("PBKDF2-HMAC-SHA256 matches RFC 7914, 80000 iterations", .timeLimit(.minutes(1)))
    func pbkdf2ManyIterations() {
        let derived = PBKDF2.deriveSHA256(
            password: Array("Password".utf8), salt: Array("NaCl".utf8), iterations: 80_000, keyByteCount: 64
        )
        #expect(
            Hex.encode(derived)
                == "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
                + "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
        )
    }

    @Test("PBKDF2 output shorter than one block is that block's prefix")
    func pbkdf2ShortOutput() {
        let derived = PBKDF2.deriveSHA256(
            password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, keyByteCount: 5
        )
        #expect(Hex.encode(derived) == "55ac046e56")
    }

    @Test("hex decoding accepts both cases and refuses odd lengths and non-hex characters")
    func hexDecoding() {
        #expect(Hex.decode("00ff10Ab") == [0x00, 0xFF, 0x10, 0xAB])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("0g") == nil)
    }
}
