/// Why bytes are not a valid frame (decoding), or why a command cannot be sent as one (encoding).
///
/// Offsets are counted from the first byte of the frame's length field.
public enum RemotingFrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The length field announces a frame over ``RemotingLimits/maxFrameSizeBytes``; rejected before
    /// the frame is buffered.
    case frameTooLarge(sizeBytes: Int, limitBytes: Int)
    /// The length field is smaller than the fixed part of a frame.
    case frameTooShort(sizeBytes: Int, minimumBytes: Int)
    /// The version byte is not ``RemotingFrameParser/protocolVersion``.
    case unsupportedVersion(UInt8)
    /// Reserved flag bits are set, or `oneway` is set on a response.
    case invalidFlags(UInt8)
    /// More headers than ``RemotingLimits/maxHeaderCount``.
    case tooManyHeaders(count: Int, limit: Int)
    /// A header block over ``RemotingLimits/maxHeaderBlockBytes``.
    case headerBlockTooLarge(sizeBytes: Int, limitBytes: Int)
    /// The header block is declared longer than the frame has room for.
    case headerBlockExceedsFrame(headerBlockBytes: Int, availableBytes: Int)
    /// Header number `index` (0-based) runs past the end of the header block.
    case headerTruncated(index: Int, offset: Int)
    /// The headers end before or after the declared header block length.
    case headerBlockLengthMismatch(declaredBytes: Int, usedBytes: Int)
    /// Header number `index` has a key or value that is not valid UTF-8.
    case headerNotUTF8(index: Int, offset: Int)
    /// Header number `index` has an empty key.
    case emptyHeaderKey(index: Int, offset: Int)
    /// The same header key appears twice.
    case duplicateHeader(key: String)
    /// Encoding: a header key or value longer than its 2-byte length field can say.
    case headerFieldTooLong(key: String, sizeBytes: Int)
    /// The connection ended in the middle of a frame.
    case truncatedFrame(receivedBytes: Int)

    public var description: String {
        switch self {
        case .frameTooLarge(let size, let limit):
            return "frame of \(size) bytes exceeds the limit of \(limit) bytes"
        case .frameTooShort(let size, let minimum):
            return "frame of \(size) bytes is shorter than the minimum of \(minimum) bytes"
        case .unsupportedVersion(let version):
            return "unsupported protocol version \(version) (expected \(RemotingFrameParser.protocolVersion))"
        case .invalidFlags(let flags):
            return "invalid flags 0x\(String(flags, radix: 16))"
        case .tooManyHeaders(let count, let limit):
            return "\(count) headers exceed the limit of \(limit)"
        case .headerBlockTooLarge(let size, let limit):
            return "header block of \(size) bytes exceeds the limit of \(limit) bytes"
        case .headerBlockExceedsFrame(let headerBlock, let available):
            return "header block of \(headerBlock) bytes does not fit in the \(available) bytes left in the frame"
        case .headerTruncated(let index, let offset):
            return "header \(index) is truncated at offset \(offset)"
        case .headerBlockLengthMismatch(let declared, let used):
            return "header block declared as \(declared) bytes but its headers use \(used) bytes"
        case .headerNotUTF8(let index, let offset):
            return "header \(index) at offset \(offset) is not valid UTF-8"
        case .emptyHeaderKey(let index, let offset):
            return "header \(index) at offset \(offset) has an empty key"
        case .duplicateHeader(let key):
            return "header \"\(key)\" appears more than once"
        case .headerFieldTooLong(let key, let size):
            return "header \"\(key)\" has a field of \(size) bytes, over the 65535-byte maximum"
        case .truncatedFrame(let received):
            return "connection ended in the middle of a frame (\(received) bytes received)"
        }
    }
}
