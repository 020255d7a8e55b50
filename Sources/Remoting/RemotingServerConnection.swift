import NIOCore

/// One client connection of a ``RemotingServer``, as a request handler sees it: enough to push oneway
/// requests to the client (server-initiated notifications) and to notice when the connection closes.
///
/// Writes go through the connection's pipeline, so they are framed and limited like responses.
public struct RemotingServerConnection: Sendable, Hashable {
    let channel: any Channel

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Identifies the connection while it is open (two values for one connection are equal).
    public var id: ObjectIdentifier { ObjectIdentifier(channel) }

    /// The loop the connection runs on; work that batches pushes per connection belongs here.
    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Completes when the connection has closed.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Whether the client is reading what is sent: false while the connection's send buffer is over its
    /// high-water mark. A pusher should hold back (and merge) what it would send until this is true again.
    public var isWritable: Bool { channel.isWritable }

    /// Sends `request` to the client as a oneway request (the client does not answer it). Flushes at once;
    /// callers that send many in one loop tick should gather them into one request instead.
    ///
    /// - Returns: completes once written, or fails if the connection is closed or the request breaks the
    ///   frame limits.
    @discardableResult
    public func sendOneway(_ request: RemotingCommand) -> EventLoopFuture<Void> {
        var command = request
        command.flags = .oneway
        return channel.writeAndFlush(command)
    }

    public static func == (lhs: RemotingServerConnection, rhs: RemotingServerConnection) -> Bool {
        lhs.channel === rhs.channel
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(channel))
    }
}
