import CLibFuzzerDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Why this target has an entry point of its own instead of using libFuzzer's `main`:
// SwiftPM compiles an executable target's entry point as `<module>_main` and links with
// `--defsym main=<module>_main`. Built with `-parse-as-library` there is no `MQTTDecoderFuzzer_main`
// and the link fails; built without it, SwiftPM's `main` wins over libFuzzer's and the fuzzer never
// starts. So the entry point hands the command line to libFuzzer's driver, which behaves exactly as
// libFuzzer's own `main` (same flags, corpus directories, crash artifacts).

var argumentCount = CommandLine.argc
var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
let status = LLVMFuzzerRunDriver(&argumentCount, &arguments) { data, size in
    // libFuzzer may pass a null pointer for the empty input.
    guard let data else {
        var empty: UInt8 = 0
        return fuzz(&empty, 0)
    }
    return fuzz(data, size)
}
exit(status)
