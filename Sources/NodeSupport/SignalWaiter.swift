import Dispatch
import Foundation

/// Delivers SIGTERM and SIGINT to async code instead of killing the process.
public final class SignalWaiter: Sendable {
    private let stream: AsyncStream<Int32>
    // Kept alive for as long as the waiter: a released source stops delivering. nonisolated(unsafe)
    // because DispatchSourceSignal is not marked Sendable; the array is written once in init and never
    // touched again, and dispatch sources are thread-safe.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]

    public init(signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        // Unblock first: a blocked signal would never reach the dispatch source.
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        sources = signals.map { signal in
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler { continuation.yield(signal) }
            source.resume()
            return source
        }
    }

    /// Waits for the first of the signals.
    public func next() async -> Int32 {
        for await signal in stream { return signal }
        return SIGTERM
    }
}
