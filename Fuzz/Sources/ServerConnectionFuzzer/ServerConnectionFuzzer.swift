import ServerConnectionFuzzing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// libFuzzer entry point. Every input is a script of events for one server connection, played by
// `ServerConnectionFuzzDriver`, which checks the machine's invariants after each event (see
// docs/fuzzing.md). A broken invariant prints the events that led to it and aborts, so libFuzzer saves
// the input; a precondition failure in the machine stops the process by itself.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerConnection(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let report = ServerConnectionFuzzDriver.run(bytes, keepTrace: isVerbose)
    if isVerbose {
        print(report.trace.joined(separator: "\n"))
        print("statistics: \(report.statistics)")
    }
    if !report.violations.isEmpty {
        // Played again with the trace: the first run keeps none, for speed.
        let traced = ServerConnectionFuzzDriver.run(bytes, keepTrace: true)
        let message = "broken invariants:\n" + report.violations.joined(separator: "\n")
            + "\nlast events:\n" + traced.trace.suffix(30).joined(separator: "\n") + "\n"
        // fatalError keeps its message in optimized builds (docs/fuzzing.md).
        fatalError(message)
    }
    return 0
}

/// `MQTT_FUZZ_VERBOSE=1` prints every event and its actions (set by `scripts/fuzz.sh replay`).
let isVerbose: Bool = {
    guard let value = getenv("MQTT_FUZZ_VERBOSE") else { return false }
    return String(cString: value) != "0"
}()
