import LMQStore
import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Remoting

/// A gateway's view of one store node: appends, reads, arrival notifications and the store's metadata,
/// over the store-node protocol (docs/store-protocol.md).
///
/// One connection carries everything. Watched queues survive reconnects: when the connection is lost the
/// client watches them again (retrying with a short backoff until the node answers) and calls the arrival
/// handler with their current max offsets, so a notification lost while the node was down is made up for.
///
/// Call ``close()`` when done: it stops the reconnect task and the connection.
public final class StoreNodeClient: LMQMetadataStoring {
    public let address: RemotingAddress
    let remoting: RemotingClient
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let events: AsyncStream<RemotingClient.ConnectionEvent>.Continuation
    private let maintenance = NIOLockedValueBox<Task<Void, Never>?>(nil)

    private struct State {
        var watched: Set<String> = []
        /// The wildcard filters registered for dispatch, registered again after a lost connection.
        var registrations: Set<DispatchRegistration> = []
        var arrivalHandler: (@Sendable ([QueueOffset]) -> Void)?
        var takeoverHandler: (@Sendable (_ clientIdentifier: String, _ claimID: UInt64) -> Void)?
        var sharedReturnedHandler: (@Sendable (_ key: String) -> Void)?
        var isClosed = false
    }

    /// How long an append may wait for its answer: longer than other requests, because under SYNC_FLUSH
    /// it waits for the disk, and an append that timed out may still have been stored (the publisher's
    /// retry is then a duplicate).
    public static let appendTimeout: Duration = .seconds(30)

    /// The shortest and longest wait between attempts to watch again after a lost connection.
    static let rewatchBackoff: (first: Duration, max: Duration) = (.milliseconds(50), .seconds(1))

    public init(
        address: RemotingAddress,
        configuration: RemotingClient.Configuration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.address = address
        self.logger = logger
        let state = NIOLockedValueBox(State())
        self.state = state
        let (stream, continuation) = AsyncStream.makeStream(of: RemotingClient.ConnectionEvent.self)
        self.events = continuation
        self.remoting = RemotingClient(
            configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger,
            onServerRequest: { request, _ in Self.received(request, state: state, logger: logger) },
            onConnectionEvent: { _, event in continuation.yield(event) }
        )
        let task = Task { [self] in await maintainWatches(events: stream) }
        maintenance.withLockedValue { $0 = task }
    }

    // MARK: The log

    /// Appends `message` once, dispatched to every queue of `queues`; returns once it is durable per the
    /// node's flush policy.
    public func append(_ message: LMQMessage, to queues: [String]) async throws -> AppendResult {
        try await call(.append, timeout: Self.appendTimeout) { body in
            message.write(to: &body)
            queues.write(to: &body)
        } decode: { reader throws(StoreWireError) in try AppendResult(from: &reader) }
    }

    /// Registers (`added`) and unregisters (`removed`) wildcard filters of sessions for dispatch: the
    /// node adds the queue of every registered filter matching an appended message's topic. Ordered with
    /// the appends of this client; the registrations are kept and sent again after a lost connection.
    public func updateDispatch(added: [DispatchRegistration], removed: [DispatchRegistration]) -> EventLoopFuture<Void> {
        state.withLockedValue { state in
            state.registrations.formUnion(added)
            state.registrations.subtract(removed)
        }
        var body = ByteBuffer()
        added.write(to: &body)
        removed.write(to: &body)
        let address = self.address
        return remoting.send(.request(code: StoreNodeRequestCode.updateDispatch.rawValue, body: body), to: address).flatMapThrowing { response in
            try Self.decode(response, from: address) { _ throws(StoreWireError) in () }
        }
    }

    // MARK: Shared subscriptions

    /// Up to `maximum` messages of the shared subscription group `key` (reading `queue`) for this gateway;
    /// a group the node does not know yet starts at `startOffset`. They are this gateway's until it
    /// finishes or gives them back (or its connection closes).
    public func takeShared(key: String, queue: String, startOffset: Int64, maximum: Int) async throws -> [LMQReadResult.Message] {
        try await call(.takeShared) { body in
            key.write(to: &body)
            queue.write(to: &body)
            body.writeInteger(startOffset)
            body.writeInteger(UInt32(clamping: maximum))
        } decode: { reader throws(StoreWireError) in try LMQReadResult(from: &reader).messages }
    }

    /// This gateway finished `offsets` of group `key`: delivered and acknowledged, or never to be sent.
    public func finishShared(key: String, offsets: [Int64]) {
        var body = ByteBuffer()
        key.write(to: &body)
        offsets.write(to: &body)
        _ = remoting.send(.request(code: StoreNodeRequestCode.finishShared.rawValue, body: body), to: address)
    }

    /// This gateway hands `offsets` of group `key` back (its members all left): other gateways get them.
    public func giveBackShared(key: String, offsets: [Int64]) {
        var body = ByteBuffer()
        key.write(to: &body)
        offsets.write(to: &body)
        _ = remoting.send(.request(code: StoreNodeRequestCode.giveBackShared.rawValue, body: body), to: address)
    }

    /// Sets what to do when the node says messages of a shared group were handed back (take again).
    public func setSharedReturnedHandler(_ handler: @escaping @Sendable (_ key: String) -> Void) {
        state.withLockedValue { $0.sharedReturnedHandler = handler }
    }

    // MARK: Session ownership

    /// Claims the connection of `clientIdentifier` for this gateway: returns once no other gateway holds
    /// it (the node told the holder to give it up, and it did, or is gone). The token goes to
    /// ``releaseSession(_:token:)``.
    public func claimSession(_ clientIdentifier: String) async throws -> UInt64 {
        try await call(.claimSession, timeout: .seconds(20)) { body in clientIdentifier.write(to: &body) } decode: { reader throws(StoreWireError) in
            try reader.integer("token", as: UInt64.self)
        }
    }

    /// The client's connection on this gateway ended.
    public func releaseSession(_ clientIdentifier: String, token: UInt64) {
        var body = ByteBuffer()
        clientIdentifier.write(to: &body)
        body.writeInteger(token)
        _ = remoting.send(.request(code: StoreNodeRequestCode.releaseSession.rawValue, body: body), to: address)
    }

    /// This gateway gave up the connection of `clientIdentifier` as the node asked (claim `claimID`).
    public func takeoverDone(_ clientIdentifier: String, claimID: UInt64) {
        var body = ByteBuffer()
        clientIdentifier.write(to: &body)
        body.writeInteger(claimID)
        _ = remoting.send(.request(code: StoreNodeRequestCode.takeoverDone.rawValue, body: body), to: address)
    }

    /// Sets what to do when the node asks this gateway to give up a client's connection: close it, write
    /// its session, then call ``takeoverDone(_:claimID:)``. Called on the connection's event loop.
    public func setTakeoverHandler(_ handler: @escaping @Sendable (_ clientIdentifier: String, _ claimID: UInt64) -> Void) {
        state.withLockedValue { $0.takeoverHandler = handler }
    }

    /// Order-preserving: calls made one after another reach the store in that order (while the
    /// connection opens, they wait for it together). A request is never resent: if the connection is lost
    /// first, the future fails, and the caller decides.
    public func appendInOrder(_ message: LMQMessage, to queues: [String]) -> EventLoopFuture<AppendResult> {
        var body = ByteBuffer()
        message.write(to: &body)
        queues.write(to: &body)
        let address = self.address
        let request = RemotingCommand.request(code: StoreNodeRequestCode.append.rawValue, body: body)
        return remoting.send(request, to: address, timeout: Self.appendTimeout).flatMapThrowing { response in
            try Self.decode(response, from: address) { reader throws(StoreWireError) in try AppendResult(from: &reader) }
        }
    }

    /// Order-preserving like ``appendInOrder(_:to:)``: appends `message` only to the queues of the filters
    /// registered on this node that match its topic (none: nothing is written, and the result has no
    /// queue offsets). For a message whose first topic is stored on another node.
    public func appendToMatchingFiltersInOrder(_ message: LMQMessage) -> EventLoopFuture<AppendResult> {
        var body = ByteBuffer()
        message.write(to: &body)
        let address = self.address
        let request = RemotingCommand.request(code: StoreNodeRequestCode.appendToMatchingFilters.rawValue, body: body)
        return remoting.send(request, to: address, timeout: Self.appendTimeout).flatMapThrowing { response in
            try Self.decode(response, from: address) { reader throws(StoreWireError) in try AppendResult(from: &reader) }
        }
    }

    /// Reads up to `maxMessages` messages (and about `maxBytes`, at least one) of `queue` from `offset`.
    public func pull(queue: String, from offset: Int64, maxMessages: Int, maxBytes: Int) async throws -> LMQReadResult {
        try await call(.pull) { body in
            body.writeWireString(queue)
            body.writeInteger(offset)
            body.writeInteger(UInt32(clamping: maxMessages))
            body.writeInteger(UInt32(clamping: maxBytes))
        } decode: { reader throws(StoreWireError) in try LMQReadResult(from: &reader) }
    }

    /// The max offset (the offset the next message will get) of each queue; 0 for an unknown one.
    public func maxOffsets(queues: [String]) async throws -> [String: Int64] {
        try await call(.maxOffsets) { body in queues.write(to: &body) } decode: { reader throws(StoreWireError) in
            try [String: Int64](from: &reader)
        }
    }

    /// The number of queues the node holds.
    public func queueCount() async throws -> Int {
        try await call(.stats) { _ in } decode: { reader throws(StoreWireError) in
            let count: Int64 = try reader.integer("queue count")
            _ = try reader.integer("commit-log start", as: Int64.self)
            _ = try reader.integer("commit-log end", as: Int64.self)
            return Int(count)
        }
    }

    // MARK: Notifications

    /// Asks the node to notify this client when `queues` get messages; returns their current max offsets.
    /// The queues stay watched across reconnects until ``unwatch(queues:)``.
    public func watch(queues: [String]) async throws -> [String: Int64] {
        state.withLockedValue { $0.watched.formUnion(queues) }
        return try await call(.watch) { body in queues.write(to: &body) } decode: { reader throws(StoreWireError) in
            try [String: Int64](from: &reader)
        }
    }

    /// Stops watching `queues` (on the node as well; a failure there only costs notifications that are ignored).
    public func unwatch(queues: [String]) {
        state.withLockedValue { $0.watched.subtract(queues) }
        var body = ByteBuffer()
        queues.write(to: &body)
        _ = remoting.send(.request(code: StoreNodeRequestCode.unwatch.rawValue, body: body), to: address)
    }

    /// Sets the handler of notifications: called with the queues that got messages and their new max
    /// offsets (``QueueOffset/offset`` is the offset the next message will get) — on the connection's event
    /// loop for a pushed notification, from a task after a re-watch. Keep it short.
    public func setArrivalHandler(_ handler: @escaping @Sendable ([QueueOffset]) -> Void) {
        state.withLockedValue { $0.arrivalHandler = handler }
    }

    /// The queues watched now.
    public var watchedQueues: Set<String> { state.withLockedValue { $0.watched } }

    private static func received(_ request: RemotingCommand, state: NIOLockedValueBox<State>, logger: Logger) {
        if request.code == StoreNodeRequestCode.takeover.rawValue {
            var reader = StoreWireReader(request.body)
            do {
                let clientIdentifier = try reader.string("client identifier")
                let claimID = try reader.integer("claim id", as: UInt64.self)
                try reader.finish()
                state.withLockedValue { $0.takeoverHandler }?(clientIdentifier, claimID)
            } catch {
                logger.warning("malformed takeover from the store node dropped", metadata: ["error": "\(error)"])
            }
            return
        }
        if request.code == StoreNodeRequestCode.sharedReturned.rawValue {
            guard let key = try? StoreWireCodec.decode(String.self, from: request.body) else {
                logger.warning("malformed shared-group notice from the store node dropped")
                return
            }
            state.withLockedValue { $0.sharedReturnedHandler }?(key)
            return
        }
        guard request.code == StoreNodeRequestCode.notify.rawValue else {
            logger.debug("unexpected request from the store node dropped", metadata: ["code": "\(request.code)"])
            return
        }
        let offsets: [QueueOffset]
        do {
            offsets = try StoreWireCodec.decode([QueueOffset].self, from: request.body)
        } catch {
            logger.warning("malformed notification from the store node dropped", metadata: ["error": "\(error)"])
            return
        }
        let (handler, watched) = state.withLockedValue { ($0.arrivalHandler, $0.watched) }
        let relevant = offsets.filter { watched.contains($0.queue) }
        guard let handler, !relevant.isEmpty else { return }
        handler(relevant)
    }

    /// Watches again after every lost connection, until the node answers; then reports the max offsets.
    private func maintainWatches(events: AsyncStream<RemotingClient.ConnectionEvent>) async {
        for await event in events {
            switch event {
            case .opened:
                continue
            case .closed:
                await rewatch()
            }
        }
    }

    private func rewatch() async {
        var backoff = Self.rewatchBackoff.first
        while !Task.isCancelled {
            let (queues, registrations, isClosed) = state.withLockedValue { (Array($0.watched), Array($0.registrations), $0.isClosed) }
            guard !queues.isEmpty || !registrations.isEmpty, !isClosed else { return }
            do {
                // Registrations first: a store node that restarted dispatches by them before anything is read.
                if !registrations.isEmpty {
                    try await call(.updateDispatch) { body in
                        registrations.write(to: &body)
                        [DispatchRegistration]().write(to: &body)
                    } decode: { _ throws(StoreWireError) in () }
                }
                let offsets = try await call(.watch) { body in queues.write(to: &body) } decode: { reader throws(StoreWireError) in
                    try [String: Int64](from: &reader)
                }
                logger.info("watching queues again after a lost connection", metadata: ["store": "\(address)", "queues": "\(queues.count)"])
                let handler = state.withLockedValue { $0.arrivalHandler }
                handler?(offsets.sorted { $0.key < $1.key }.map { QueueOffset(queue: $0.key, offset: $0.value) })
                return
            } catch {
                logger.debug("store node not back yet", metadata: ["store": "\(address)", "error": "\(error)"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, Self.rewatchBackoff.max)
        }
    }

    // MARK: Closing

    /// Stops watching and closes the connection. Later calls fail with ``RemotingError/clientShutDown``.
    public func close() async throws {
        state.withLockedValue { $0.isClosed = true }
        events.finish()
        let task = maintenance.withLockedValue { $0 }
        task?.cancel()
        await remoting.shutdown()
        await task?.value
    }

    // MARK: Calls

    /// Sends a request and decodes its response body; an error response is thrown as the error it stands for.
    func call<T>(
        _ code: StoreNodeRequestCode, timeout: Duration? = nil, body build: (inout ByteBuffer) -> Void,
        decode: (inout StoreWireReader) throws(StoreWireError) -> T
    ) async throws -> T {
        var body = ByteBuffer()
        build(&body)
        let response = try await remoting.invoke(.request(code: code.rawValue, body: body), to: address, timeout: timeout)
        return try Self.decode(response, from: address, decode)
    }

    static func decode<T>(
        _ response: RemotingCommand, from address: RemotingAddress, _ decode: (inout StoreWireReader) throws(StoreWireError) -> T
    ) throws -> T {
        switch response.responseCode {
        case .success:
            var reader = StoreWireReader(response.body)
            let value = try decode(&reader)
            try reader.finish()
            return value
        case .storeSessionNotFound:
            throw LMQMetadataStoreError.sessionNotFound(clientIdentifier: response.remark ?? "")
        case .storeInvalidArgument:
            throw LMQMetadataStoreError.invalidArgument(response.remark ?? "")
        default:
            throw RemotingError.remote(address: "\(address)", code: response.responseCode, remark: response.remark ?? "")
        }
    }
}
