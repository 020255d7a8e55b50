/// Two token buckets (messages and bytes) for one connection's inbound PUBLISHes.
///
/// Each bucket holds at most one second's worth and refills continuously. A PUBLISH already read is
/// always taken, even into debt; the answer says how long reading must pause until the buckets are back
/// at zero. That keeps the average at the limit while letting a packet larger than a second's budget through.
struct InboundRateLimiter: Sendable {
    /// 0 turns a bucket off.
    let messagesPerSecond: Int
    let bytesPerSecond: Int
    private var messageTokens: Double
    private var byteTokens: Double
    private var lastRefillNanos: UInt64

    init(messagesPerSecond: Int, bytesPerSecond: Int, nowNanos: UInt64) {
        precondition(messagesPerSecond >= 0 && bytesPerSecond >= 0)
        self.messagesPerSecond = messagesPerSecond
        self.bytesPerSecond = bytesPerSecond
        self.messageTokens = Double(messagesPerSecond)
        self.byteTokens = Double(bytesPerSecond)
        self.lastRefillNanos = nowNanos
    }

    /// Takes one message of `bytes` bytes; returns how many nanoseconds reading must pause, or nil when
    /// the connection is within its limits.
    mutating func take(bytes: Int, nowNanos: UInt64) -> UInt64? {
        refill(nowNanos: nowNanos)
        if messagesPerSecond > 0 { messageTokens -= 1 }
        if bytesPerSecond > 0 { byteTokens -= Double(bytes) }
        return pauseNanos()
    }

    private func pauseNanos() -> UInt64? {
        var seconds = 0.0
        if messagesPerSecond > 0 && messageTokens < 0 { seconds = max(seconds, -messageTokens / Double(messagesPerSecond)) }
        if bytesPerSecond > 0 && byteTokens < 0 { seconds = max(seconds, -byteTokens / Double(bytesPerSecond)) }
        guard seconds > 0 else { return nil }
        // At least a millisecond, so a pause is never a busy loop of zero-length timers.
        return max(1_000_000, UInt64(seconds * 1e9))
    }

    private mutating func refill(nowNanos: UInt64) {
        guard nowNanos > lastRefillNanos else { return }
        let elapsedSeconds = Double(nowNanos - lastRefillNanos) / 1e9
        lastRefillNanos = nowNanos
        if messagesPerSecond > 0 {
            messageTokens = min(Double(messagesPerSecond), messageTokens + elapsedSeconds * Double(messagesPerSecond))
        }
        if bytesPerSecond > 0 {
            byteTokens = min(Double(bytesPerSecond), byteTokens + elapsedSeconds * Double(bytesPerSecond))
        }
    }
}
