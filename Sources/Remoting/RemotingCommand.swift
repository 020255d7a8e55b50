import NIOCore

/// One frame of the remoting protocol: a request or the response to one.
///
/// A request carries a request code (what to do), an `opaque` number chosen by the sender, string
/// headers (the arguments) and a body (bulk data, e.g. a value or a JSON document). The response
/// carries the same `opaque`, a response code (``RemotingResponseCode``) in `code`, and its own headers
/// and body; the human-readable reason of a failure is the ``remarkHeader`` header.
///
/// The wire format is in `docs/protocol.md`; ``RemotingFrameParser`` and ``RemotingFrameEncoder``
/// implement it. The body is a `ByteBuffer` slice of the received frame, not a copy.
public struct RemotingCommand: Sendable, Hashable {
    /// Header carrying the text of an error response.
    public static let remarkHeader = "remark"

    /// The bits of the frame's flags byte.
    public struct Flags: OptionSet, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Set on responses; clear on requests.
        public static let response = Flags(rawValue: 1 << 0)
        /// A request that expects no response. Never set on a response.
        public static let oneway = Flags(rawValue: 1 << 1)

        /// Every bit with a meaning; the others must be zero.
        public static let known: Flags = [.response, .oneway]
    }

    /// The request code of a request, the response code of a response.
    public var code: Int32
    /// Chosen by the requester; a response carries the opaque of its request, which is how a client
    /// matches responses to requests that are in flight together on one connection.
    public var opaque: Int32
    public var flags: Flags
    /// Arguments of a request, or results of a response. Keys are unique and non-empty.
    public var headers: [String: String]
    public var body: ByteBuffer

    public init(code: Int32, opaque: Int32 = 0, flags: Flags = [], headers: [String: String] = [:], body: ByteBuffer = ByteBuffer()) {
        self.code = code
        self.opaque = opaque
        self.flags = flags
        self.headers = headers
        self.body = body
    }

    /// A request with `code`; the client assigns the opaque when it sends it.
    public static func request(code: Int32, headers: [String: String] = [:], body: ByteBuffer = ByteBuffer()) -> RemotingCommand {
        RemotingCommand(code: code, headers: headers, body: body)
    }

    /// The response to `request`, carrying its opaque.
    public static func response(
        to request: RemotingCommand,
        code: RemotingResponseCode = .success,
        remark: String? = nil,
        headers: [String: String] = [:],
        body: ByteBuffer = ByteBuffer()
    ) -> RemotingCommand {
        var headers = headers
        if let remark { headers[remarkHeader] = remark }
        return RemotingCommand(code: code.rawValue, opaque: request.opaque, flags: .response, headers: headers, body: body)
    }

    /// Whether this is a response (the ``Flags/response`` bit).
    public var isResponse: Bool { flags.contains(.response) }
    /// Whether this is a request that expects no response.
    public var isOneway: Bool { flags.contains(.oneway) }
    /// The code of a response as a ``RemotingResponseCode``.
    public var responseCode: RemotingResponseCode { RemotingResponseCode(rawValue: code) }
    /// The ``remarkHeader`` header: why a request failed.
    public var remark: String? { headers[Self.remarkHeader] }
    /// The body decoded as UTF-8 (invalid sequences are replaced).
    public var bodyString: String { String(buffer: body) }
}
