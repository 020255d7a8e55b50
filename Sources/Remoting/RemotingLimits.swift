/// The bounds a frame must respect, checked by ``RemotingFrameParser`` before the bytes they cover are
/// buffered, and by ``RemotingFrameEncoder`` before a frame is sent (so a peer with the same limits never
/// has to reject what we send).
public struct RemotingLimits: Sendable, Hashable {
    /// The largest frame, counting its 4-byte length field. Default: 16 MiB.
    public var maxFrameSizeBytes: Int
    /// The most headers in one frame. Default: 64.
    public var maxHeaderCount: Int
    /// The largest header block (every key and value with their 2-byte lengths). Default: 64 KiB.
    public var maxHeaderBlockBytes: Int

    public init(maxFrameSizeBytes: Int = 16 * 1024 * 1024, maxHeaderCount: Int = 64, maxHeaderBlockBytes: Int = 64 * 1024) {
        precondition(
            maxFrameSizeBytes >= RemotingFrameParser.minimumFrameSizeBytes && maxFrameSizeBytes <= Int(UInt32.max),
            "maxFrameSizeBytes must be between \(RemotingFrameParser.minimumFrameSizeBytes) and \(UInt32.max)"
        )
        precondition(maxHeaderCount >= 0 && maxHeaderCount <= Int(UInt16.max), "maxHeaderCount must be 0...65535")
        precondition(maxHeaderBlockBytes >= 0 && maxHeaderBlockBytes <= Int(UInt32.max), "maxHeaderBlockBytes must not be negative")
        self.maxFrameSizeBytes = maxFrameSizeBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxHeaderBlockBytes = maxHeaderBlockBytes
    }
}
