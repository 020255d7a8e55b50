import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Remoting
import Testing

/// The remoting client and server over real loopback sockets.
@Suite("Remoting client and server")
struct RemotingClientServerTests {
    static let echo: Int32 = 1
    static let slow: Int32 = 2
    static let fails: Int32 = 3
    static let throwsPlain: Int32 = 4
    static let record: Int32 = 5

    /// A server with a few test handlers on a free loopback port. `echo` answers the body back after
    /// the number of milliseconds in header `delay-ms`; it also records each client's address, so a test
    /// can tell how many connections carried its requests.
    final class TestServer: Sendable {
        let server: RemotingServer
        let port: Int
        let peers = NIOLockedValueBox<Set<String>>([])
        let oneways = NIOLockedValueBox<[String]>([])
        /// How many `slow` requests have begun running.
        let slowStarted = NIOLockedValueBox(0)

        init(port requestedPort: Int = 0, shutdownGracePeriod: Duration = .seconds(5)) async throws {
            server = RemotingServer(configuration: .init(host: "127.0.0.1", port: requestedPort, shutdownGracePeriod: shutdownGracePeriod))
            let peers = self.peers
            let oneways = self.oneways
            let slowStarted = self.slowStarted
            server.register(code: RemotingClientServerTests.echo) { request, context in
                peers.withLockedValue { _ = $0.insert("\(context.remoteAddress.map { "\($0)" } ?? "?")") }
                if let delay = request.headers["delay-ms"].flatMap(Int.init) {
                    try await Task.sleep(for: .milliseconds(delay))
                }
                return .response(to: request, headers: ["echo": request.headers["id"] ?? ""], body: request.body)
            }
            server.register(code: RemotingClientServerTests.slow) { request, _ in
                slowStarted.withLockedValue { $0 += 1 }
                try await Task.sleep(for: .milliseconds(Int(request.headers["delay-ms"] ?? "1000")!))
                return .response(to: request)
            }
            server.register(code: RemotingClientServerTests.fails) { _, _ in
                throw RemotingResponseError(.keyNotFound, "no such key")
            }
            server.register(code: RemotingClientServerTests.throwsPlain) { _, _ in
                struct Broken: Error, CustomStringConvertible { var description: String { "handler broke" } }
                throw Broken()
            }
            server.register(code: RemotingClientServerTests.record) { request, _ in
                oneways.withLockedValue { $0.append(request.bodyString) }
                return .response(to: request)
            }
            self.port = try await server.start()
        }

        var address: RemotingAddress { RemotingAddress(host: "127.0.0.1", port: port) }
    }

    @Test("500 concurrent requests share one connection; each gets its own response although they finish out of order")
    func manyInFlight() async throws {
        let server = try await TestServer()
        let client = RemotingClient()
        let address = server.address
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in 0..<500 {
                group.addTask {
                    let request = RemotingCommand.request(
                        code: Self.echo, headers: ["id": "\(id)", "delay-ms": "\((id * 7) % 50)"], body: ByteBuffer(string: "body-\(id)")
                    )
                    let response = try await client.invoke(request, to: address, timeout: .seconds(20))
                    #expect(response.responseCode == .success)
                    #expect(response.headers["echo"] == "\(id)")
                    #expect(response.bodyString == "body-\(id)")
                }
            }
            try await group.waitForAll()
        }
        #expect(server.peers.withLockedValue { $0.count } == 1, "requests were spread over several connections")
        await client.shutdown()
        await server.server.shutdown()
    }

    @Test("a request that gets no answer in time fails with a timeout; the connection keeps working")
    func timeout() async throws {
        let server = try await TestServer()
        let client = RemotingClient()
        await #expect(throws: RemotingError.timeout(address: "\(server.address)", requestCode: Self.slow, timeoutMilliseconds: 100)) {
            try await client.invoke(.request(code: Self.slow, headers: ["delay-ms": "1000"]), to: server.address, timeout: .milliseconds(100))
        }
        // The error itself shows the client's timer fired: the server would have answered after 1 s.
        // (No wall-clock bound here: a loaded test machine makes those flaky.)
        let response = try await client.invoke(.request(code: Self.echo, body: ByteBuffer(string: "after")), to: server.address)
        #expect(response.bodyString == "after")
        #expect(server.peers.withLockedValue { $0.count } == 1)
        await client.shutdown()
        await server.server.shutdown()
    }

    @Test("nothing listening: connection refused, quickly and by name")
    func serverDown() async throws {
        let server = try await TestServer()
        let address = server.address
        await server.server.shutdown()
        let client = RemotingClient()
        await #expect(throws: RemotingError.connectionRefused(address: "\(address)")) {
            try await client.invoke(.request(code: Self.echo), to: address)
        }
        #expect(RemotingError.connectionRefused(address: "\(address)").description.contains("connection refused by 127.0.0.1:"))
        await client.shutdown()
    }

    @Test("after the server restarts, the next request reconnects")
    func reconnect() async throws {
        var server = try await TestServer()
        let port = server.port
        let client = RemotingClient()
        #expect(try await client.invoke(.request(code: Self.echo), to: server.address).responseCode == .success)
        await server.server.shutdown()
        // The request in the gap fails clearly: the old connection is closed, or the port refuses.
        do {
            _ = try await client.invoke(.request(code: Self.echo), to: RemotingAddress(host: "127.0.0.1", port: port))
            Issue.record("a request to a stopped server succeeded")
        } catch {
            #expect(error.isUnavailable, "unexpected error \(error)")
        }
        server = try await TestServer(port: port)
        #expect(try await client.invoke(.request(code: Self.echo, body: ByteBuffer(string: "again")), to: server.address).bodyString == "again")
        await client.shutdown()
        await server.server.shutdown()
    }

    @Test("error responses carry their code and remark; unknown codes are not supported")
    func errorResponses() async throws {
        let server = try await TestServer()
        let client = RemotingClient()
        let notFound = try await client.invoke(.request(code: Self.fails), to: server.address)
        #expect(notFound.responseCode == .keyNotFound)
        #expect(notFound.remark == "no such key")
        #expect(throws: RemotingError.remote(address: "\(server.address)", code: .keyNotFound, remark: "no such key")) {
            try notFound.expectSuccess(from: server.address)
        }
        let broken = try await client.invoke(.request(code: Self.throwsPlain), to: server.address)
        #expect(broken.responseCode == .systemError)
        #expect(broken.remark == "handler broke")
        let unknown = try await client.invoke(.request(code: 999), to: server.address)
        #expect(unknown.responseCode == .requestCodeNotSupported)
        #expect(unknown.remark == "request code 999 not supported")
        await client.shutdown()
        await server.server.shutdown()
    }

    @Test("oneway requests run without a response")
    func oneway() async throws {
        let server = try await TestServer()
        let client = RemotingClient()
        try await client.invokeOneway(.request(code: Self.record, body: ByteBuffer(string: "fire")), to: server.address)
        // A normal request after it on the same connection: once answered, the oneway has been read too.
        _ = try await client.invoke(.request(code: Self.echo), to: server.address)
        for _ in 0..<100 where server.oneways.withLockedValue({ $0.isEmpty }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(server.oneways.withLockedValue { $0 } == ["fire"])
        await client.shutdown()
        await server.server.shutdown()
    }

    @Test("a request over the frame limit fails before anything is sent")
    func requestTooLarge() async throws {
        let client = RemotingClient(configuration: .init(limits: RemotingLimits(maxFrameSizeBytes: 1_024)))
        let request = RemotingCommand.request(code: Self.echo, body: ByteBuffer(repeating: 0, count: 2_000))
        await #expect(throws: RemotingError.invalidRequest(.frameTooLarge(sizeBytes: 2_020, limitBytes: 1_024))) {
            try await client.invoke(request, to: RemotingAddress(host: "127.0.0.1", port: 9))
        }
        await client.shutdown()
    }

    @Test("malformed bytes close that connection only; other connections and new ones are served")
    func malformedFrame() async throws {
        let server = try await TestServer()
        let client = RemotingClient()
        #expect(try await client.invoke(.request(code: Self.echo), to: server.address).responseCode == .success)

        for garbage: [UInt8] in [[0xFF, 0xFF, 0xFF, 0xFF], [0x00, 0x00, 0x00, 0x10, 0x07] + [UInt8](repeating: 0, count: 15)] {
            let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: server.port).get()
            try await raw.writeAndFlush(ByteBuffer(bytes: garbage))
            let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask { try await raw.closeFuture.get(); return true }
                group.addTask { try await Task.sleep(for: .seconds(5)); return false }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
            #expect(closed, "the server did not close a connection that sent \(garbage.prefix(5))")
            if !closed { try? await raw.close() }
        }

        // The connection opened before is still served, and so is a new client.
        #expect(try await client.invoke(.request(code: Self.echo, body: ByteBuffer(string: "still")), to: server.address).bodyString == "still")
        let second = RemotingClient()
        #expect(try await second.invoke(.request(code: Self.echo), to: server.address).responseCode == .success)
        await second.shutdown()
        await client.shutdown()
        await server.server.shutdown()
    }

    @Test("a connection that ends mid-frame is closed by the server")
    func truncatedFrame() async throws {
        let server = try await TestServer()
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: server.port).get()
        try await raw.writeAndFlush(ByteBuffer(bytes: RemotingFrameParserTests.goldenBytes.prefix(30)))
        try await raw.close(mode: .output)
        let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await raw.closeFuture.get(); return true }
            group.addTask { try await Task.sleep(for: .seconds(5)); return false }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        #expect(closed)
        if !closed { try? await raw.close() }
        await server.server.shutdown()
    }

    @Test("shutdown lets a running request finish, then refuses connections")
    func gracefulShutdown() async throws {
        let server = try await TestServer()
        let client = RemotingClient()
        let address = server.address
        async let slowResponse = client.invoke(.request(code: Self.slow, headers: ["delay-ms": "300"]), to: address, timeout: .seconds(5))
        for _ in 0..<500 where server.slowStarted.withLockedValue({ $0 }) == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(server.slowStarted.withLockedValue { $0 } == 1)
        await server.server.shutdown()
        #expect(try await slowResponse.responseCode == .success)
        await #expect(throws: RemotingError.self) {
            try await client.invoke(.request(code: Self.echo), to: address)
        }
        await client.shutdown()
    }

    @Test("requests after the client shut down fail with clientShutDown")
    func clientShutDown() async throws {
        let client = RemotingClient()
        await client.shutdown()
        await #expect(throws: RemotingError.clientShutDown) {
            try await client.invoke(.request(code: Self.echo), to: RemotingAddress(host: "127.0.0.1", port: 9))
        }
    }
}
