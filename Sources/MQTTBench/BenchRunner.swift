import MQTTCore
import NIOCore
import NIOPosix

/// A connected client: its handler, usable only on its event loop.
struct ClientReference: Sendable {
    var loopIndex: Int
    var handler: NIOLoopBound<BenchClientHandler>
}

/// What opening a batch of clients came to.
struct OpenOutcome: Sendable {
    var clients: [ClientReference]
    var attempted: Int
    var failed: Int
    /// Up to a few distinct reasons, for the report.
    var failureReasons: [String]
    var elapsedSeconds: Double
}

/// Drives the clients of one run over a fixed set of event loops: opens them at a rate, runs code on
/// each of them on its own loop, and gathers the per-loop statistics.
struct BenchRunner: Sendable {
    let group: MultiThreadedEventLoopGroup
    let loops: [any EventLoop]
    let stats: [LoopStats]
    let host: String
    let port: Int
    let session: SessionSettings
    /// Nil: plain TCP.
    let tls: BenchTLS?

    init(threads: Int, host: String, port: Int, session: SessionSettings, tls: BenchTLS?) {
        precondition(threads > 0)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        loops = Array(group.makeIterator())
        stats = loops.map { _ in LoopStats() }
        self.host = host
        self.port = port
        self.session = session
        self.tls = tls
    }

    func shutdown() async {
        try? await group.shutdownGracefully()
    }

    // MARK: - Opening clients

    /// Opens `specs`, at most `ratePerSecond` new connections a second (nil: as fast as `maxPending`
    /// outstanding handshakes allow), and waits until each is ready or has failed.
    func open(_ specs: [ClientSpec], firstIndex: Int, ratePerSecond: Double?, maxPending: Int) async -> OpenOutcome {
        let startedNanos = monotonicNanoseconds()
        var clients: [ClientReference] = []
        clients.reserveCapacity(specs.count)
        var failed = 0
        var reasons: [String] = []
        await withTaskGroup(of: Result<ClientReference, any Error>.self) { group in
            var pending = 0
            func collect(_ result: Result<ClientReference, any Error>) {
                pending -= 1
                switch result {
                case .success(let client):
                    clients.append(client)
                case .failure(let error):
                    failed += 1
                    let reason = "\(error)"
                    if reasons.count < 5, !reasons.contains(reason) { reasons.append(reason) }
                }
            }
            for (offset, spec) in specs.enumerated() {
                if let rate = ratePerSecond {
                    let dueNanos = startedNanos + UInt64(Double(offset) / rate * 1e9)
                    let now = monotonicNanoseconds()
                    if dueNanos > now + 1_000_000 {
                        try? await Task.sleep(nanoseconds: dueNanos - now)
                    }
                }
                while pending >= maxPending, let result = await group.next() {
                    collect(result)
                }
                let loopIndex = (firstIndex + offset) % loops.count
                let future = connect(spec, loopIndex: loopIndex)
                pending += 1
                group.addTask {
                    do {
                        return .success(ClientReference(loopIndex: loopIndex, handler: try await future.get()))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            while let result = await group.next() {
                collect(result)
            }
        }
        return OpenOutcome(
            clients: clients,
            attempted: specs.count,
            failed: failed,
            failureReasons: reasons,
            elapsedSeconds: Double(monotonicNanoseconds() - startedNanos) / 1e9
        )
    }

    private func connect(_ spec: ClientSpec, loopIndex: Int) -> EventLoopFuture<NIOLoopBound<BenchClientHandler>> {
        let loop = loops[loopIndex]
        let stats = self.stats[loopIndex]
        let session = self.session
        let tls = self.tls
        let ready = loop.makePromise(of: NIOLoopBound<BenchClientHandler>.self)
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(session.connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try tls?.addHandlers(to: channel, readyPromise: ready)
                    let decoder = MQTTPacketDecoder(protocolVersion: session.protocolVersion)
                    let handler = BenchClientHandler(spec: spec, session: session, stats: stats, readyPromise: ready)
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(MQTTPacketByteDecoder(decoder: decoder)),
                        handler
                    )
                }
            }
        if let source = spec.sourceAddress {
            bootstrap = bootstrap.bind(to: source)
        }
        bootstrap.connect(host: host, port: spec.port ?? port).whenFailure { error in
            // A failed TCP connect never reaches the handler; a promise completed twice keeps its first result.
            ready.fail(error)
        }
        return ready.futureResult
    }

    // MARK: - Acting on clients

    /// Runs `body` on every client, each on its own event loop, and waits until all have run.
    func forEach(_ clients: [ClientReference], _ body: @escaping @Sendable (BenchClientHandler) -> Void) async {
        var byLoop = Array(repeating: [NIOLoopBound<BenchClientHandler>](), count: loops.count)
        for client in clients { byLoop[client.loopIndex].append(client.handler) }
        let futures = byLoop.enumerated().map { index, handlers in
            loops[index].submit {
                for handler in handlers { body(handler.value) }
            }
        }
        for future in futures { try? await future.get() }
    }

    /// Collects a value from every client, on its own loop.
    func map<Value: Sendable>(_ clients: [ClientReference], _ body: @escaping @Sendable (BenchClientHandler) -> Value) async -> [Value] {
        var byLoop = Array(repeating: [NIOLoopBound<BenchClientHandler>](), count: loops.count)
        for client in clients { byLoop[client.loopIndex].append(client.handler) }
        var values: [Value] = []
        for (index, handlers) in byLoop.enumerated() where !handlers.isEmpty {
            if let part = try? await loops[index].submit({ handlers.map { body($0.value) } }).get() {
                values.append(contentsOf: part)
            }
        }
        return values
    }

    /// Sends DISCONNECT on every client and waits (a bounded time) for the channels to close.
    func closeAll(_ clients: [ClientReference]) async {
        var byLoop = Array(repeating: [NIOLoopBound<BenchClientHandler>](), count: loops.count)
        for client in clients { byLoop[client.loopIndex].append(client.handler) }
        var closing: [EventLoopFuture<Void>] = []
        for (index, handlers) in byLoop.enumerated() where !handlers.isEmpty {
            let loop = loops[index]
            let future = loop.submit {
                EventLoopFuture.andAllComplete(handlers.compactMap { $0.value.disconnect() }, on: loop)
            }.flatMap { $0 }
            closing.append(future)
        }
        let deadline = loops[0].scheduleTask(in: .seconds(10)) {}
        for future in closing {
            _ = try? await future.or(deadline.futureResult).get()
        }
        deadline.cancel()
    }

    // MARK: - Statistics

    /// The merged statistics of every loop.
    func snapshot() async -> StatsSnapshot {
        await merged { $0.snapshot() }
    }

    /// The merged statistics, with the latency of the interval since the previous call.
    func intervalSnapshot() async -> StatsSnapshot {
        await merged { $0.takeInterval() }
    }

    func resetLatency() async {
        _ = await merged { stats in
            stats.resetLatency()
            return StatsSnapshot.empty()
        }
    }

    private func merged(_ take: @escaping @Sendable (LoopStats) -> StatsSnapshot) async -> StatsSnapshot {
        var total = StatsSnapshot.empty()
        for (index, loop) in loops.enumerated() {
            let stats = self.stats[index]
            if let part = try? await loop.submit({ take(stats) }).get() {
                total.merge(part)
            }
        }
        return total
    }
}

extension EventLoopFuture where Value == Void {
    /// Completes when either future does.
    fileprivate func or(_ other: EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        cascade(to: promise)
        other.hop(to: eventLoop).cascade(to: promise)
        return promise.futureResult
    }
}
