import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves the Prometheus text exposition of a `GatewayMetrics` at `GET /metrics` over HTTP/1.1. Anything
/// else is 404 (405 for other methods on `/metrics`). Before each answer `refresh` updates the gauges
/// that are read rather than counted (queues, sessions, retained messages).
public final class MetricsExporter: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// The bound port (the chosen one when started with port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Listens on `host:port` on `group`; returns once the port accepts connections.
    public static func start(
        host: String, port: Int, metrics: GatewayMetrics, group: any EventLoopGroup,
        refresh: @escaping @Sendable () async -> Void = {}
    ) async throws -> MetricsExporter {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(metrics: metrics, refresh: refresh))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return MetricsExporter(channel: channel)
    }

    /// Stops listening.
    public func shutdown() async {
        try? await channel.close()
    }
}

/// One HTTP connection of the exporter.
final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: GatewayMetrics
    private let refresh: @Sendable () async -> Void
    private var request: HTTPRequestHead?

    init(metrics: GatewayMetrics, refresh: @escaping @Sendable () async -> Void) {
        self.metrics = metrics
        self.refresh = refresh
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(context: context, to: head)
        }
    }

    private func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path == "/metrics" else {
            write(context: context, head: head, status: .notFound, contentType: "text/plain; charset=utf-8", body: Array("not found; try /metrics\n".utf8))
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            write(context: context, head: head, status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("GET only\n".utf8))
            return
        }
        let promise = context.eventLoop.makePromise(of: [UInt8].self)
        promise.completeWithTask { [metrics, refresh] in
            await refresh()
            return metrics.exposition()
        }
        promise.futureResult.assumeIsolated().whenSuccess { [self] body in
            write(
                context: context, head: head, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: head.method == .HEAD ? [] : body
            )
        }
    }

    private func write(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
