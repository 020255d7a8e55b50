import CLibFuzzerDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The entry point hands the command line to libFuzzer's driver, for the reason given in
// MQTTDecoderFuzzer/main.swift (SwiftPM's `main` would replace libFuzzer's).

var argumentCount = CommandLine.argc
var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
let status = LLVMFuzzerRunDriver(&argumentCount, &arguments) { data, size in
    // libFuzzer may pass a null pointer for the empty input.
    guard let data else {
        var empty: UInt8 = 0
        return fuzzServerConnection(&empty, 0)
    }
    return fuzzServerConnection(data, size)
}
exit(status)
