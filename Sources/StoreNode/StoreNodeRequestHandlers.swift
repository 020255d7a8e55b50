import Foundation
import LMQStore
import MQTTCore
import NIOCore
import NIOPosix
import Remoting

/// Serves the store-node request codes (docs/store-protocol.md) from one store and its metadata.
struct StoreNodeRequestHandlers: Sendable {
    let store: LMQStore
    let metadata: LMQMetadataStore
    let watches: StoreNodeWatchRegistry
    let dispatch: any MessageDispatching
    let ownership: SessionOwnership
    let sharedGroups: SharedGroupRegistry

    func register(on server: RemotingServer) {
        registerLog(on: server)
        registerOffsets(on: server)
        registerRetained(on: server)
        registerSessions(on: server)
        registerOwnership(on: server)
        registerSharedGroups(on: server)
    }

    // MARK: Shared subscriptions

    private func registerSharedGroups(on server: RemotingServer) {
        let groups = self.sharedGroups
        let push: @Sendable (RemotingServerConnection, String) -> Void = { taker, key in
            taker.sendOneway(.request(code: StoreNodeRequestCode.sharedReturned.rawValue, body: StoreWireCodec.encode(key)))
                .whenFailure { _ in }
        }
        serve(server, .takeShared) { request, context in
            let (key, queue, start, maximum) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("group"), try reader.string("queue"), try reader.integer("start offset", as: Int64.self),
                 try reader.integer("max messages", as: UInt32.self))
            }
            guard let connection = context.connection else { throw RemotingResponseError(.systemError, "no connection to take on") }
            let taken = try await groups.take(
                key: key, queue: queue, startOffset: start, maximum: Int(max(1, min(maximum, 1_024))), by: connection, push: push
            )
            // A read result carrying just the messages.
            return StoreWireCodec.encode(LMQReadResult(status: .found, messages: taken, nextOffset: 0, minOffset: 0, maxOffset: 0))
        }
        // Ordered, on the loop: what a connection finished or gave back is applied before its close is seen.
        serveOnLoop(server, .finishShared) { request, _ in
            let (key, offsets) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("group"), try [Int64](from: &reader))
            }
            groups.finish(key: key, offsets: offsets)
        }
        serveOnLoop(server, .giveBackShared) { request, context in
            let (key, offsets) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("group"), try [Int64](from: &reader))
            }
            if let connection = context.connection { groups.giveBack(key: key, offsets: offsets, by: connection, push: push) }
        }
    }

    // MARK: The log

    private func registerLog(on server: RemotingServer) {
        let store = self.store
        let watches = self.watches
        let dispatch = self.dispatch
        // Ordered, like the appends: once a registration is answered, every append after it is dispatched
        // by it, whichever connection the append comes on.
        serveOnLoop(server, .updateDispatch) { request, _ in
            let (added, removed) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try [DispatchRegistration](from: &reader), try [DispatchRegistration](from: &reader))
            }
            dispatch.update(added: added, removed: removed)
        }
        // Ordered: the appends of one connection are written in the order they arrived (a publisher's
        // messages keep their order); only the wait for the disk runs concurrently.
        server.register(code: StoreNodeRequestCode.append.rawValue) { request, context in
            let eventLoop = context.connection?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
            let pending: LMQStore.PendingAppend
            do {
                let (message, queues) = try Self.arguments(request) { reader throws(StoreWireError) in
                    (try LMQMessage(from: &reader), try [String](from: &reader))
                }
                // The gateway's queues plus those of every session's matching wildcard filter in the cluster.
                pending = try store.write(message, to: dispatch.dispatchQueues(topic: message.topic, adding: queues))
            } catch {
                return eventLoop.makeFailedFuture(Self.responseError(error))
            }
            return Self.answerWhenDurable(request, pending, store: store, on: eventLoop)
        }
        // Ordered like APPEND. Nothing is written when no registered filter matches.
        server.register(code: StoreNodeRequestCode.appendToMatchingFilters.rawValue) { request, context in
            let eventLoop = context.connection?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
            let pending: LMQStore.PendingAppend
            do {
                let message = try Self.arguments(request) { reader throws(StoreWireError) in try LMQMessage(from: &reader) }
                let queues = dispatch.dispatchQueues(topic: message.topic, adding: [])
                guard !queues.isEmpty else {
                    let nothing = AppendResult(commitLogPosition: -1, queueOffsets: [], storeTimestampMillis: Date.nowMillis)
                    return eventLoop.makeSucceededFuture(.response(to: request, body: StoreWireCodec.encode(nothing)))
                }
                pending = try store.write(message, to: queues)
            } catch {
                return eventLoop.makeFailedFuture(Self.responseError(error))
            }
            return Self.answerWhenDurable(request, pending, store: store, on: eventLoop)
        }
        serve(server, .pull) { request, _ in
            let (queue, offset, maxMessages, maxBytes) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("queue"), try reader.integer("from offset", as: Int64.self),
                 try reader.integer("max messages", as: UInt32.self), try reader.integer("max bytes", as: UInt32.self))
            }
            guard maxMessages > 0, maxBytes > 0 else {
                throw RemotingResponseError(.invalidParameter, "maxMessages and maxBytes must be positive")
            }
            return StoreWireCodec.encode(try store.read(queue: queue, from: offset, maxMessages: Int(maxMessages), maxBytes: Int(maxBytes)))
        }
        serve(server, .maxOffsets) { request, _ in
            let queues = try Self.arguments(request) { reader throws(StoreWireError) in try [String](from: &reader) }
            return StoreWireCodec.encode(Dictionary(queues.map { ($0, store.maxOffset(queue: $0)) }, uniquingKeysWith: { first, _ in first }))
        }
        serve(server, .stats) { _, _ in
            let range = store.commitLogRange
            var body = ByteBuffer()
            body.writeInteger(Int64(store.queueCount))
            body.writeInteger(range.lowerBound)
            body.writeInteger(range.upperBound)
            return body
        }
        serve(server, .watch) { request, context in
            let queues = try Self.arguments(request) { reader throws(StoreWireError) in try [String](from: &reader) }
            guard let connection = context.connection else { throw RemotingResponseError(.systemError, "no connection to watch on") }
            // Watch first, then read: an append in between is notified (again) rather than missed.
            watches.watch(queues, connection: connection)
            return StoreWireCodec.encode(Dictionary(queues.map { ($0, store.maxOffset(queue: $0)) }, uniquingKeysWith: { first, _ in first }))
        }
        serve(server, .unwatch) { request, context in
            let queues = try Self.arguments(request) { reader throws(StoreWireError) in try [String](from: &reader) }
            if let connection = context.connection { watches.unwatch(queues, connection: connection) }
            return ByteBuffer()
        }
    }

    // MARK: Consume offsets

    private func registerOffsets(on server: RemotingServer) {
        let metadata = self.metadata
        serve(server, .commitOffset) { request, _ in
            let (group, lmq, offset) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("group"), try reader.string("lmq"), try reader.integer("offset", as: Int64.self))
            }
            try await metadata.commitOffset(group: group, lmq: lmq, offset: offset)
            return ByteBuffer()
        }
        serve(server, .queryOffset) { request, _ in
            let (group, lmq) = try Self.arguments(request) { reader throws(StoreWireError) in (try reader.string("group"), try reader.string("lmq")) }
            return StoreWireCodec.encode(try await metadata.queryOffset(group: group, lmq: lmq))
        }
        serve(server, .offsets) { request, _ in
            let group = try Self.arguments(request) { reader throws(StoreWireError) in try reader.string("group") }
            return StoreWireCodec.encode(try await metadata.offsets(group: group))
        }
        serve(server, .deleteOffsets) { request, _ in
            let group = try Self.arguments(request) { reader throws(StoreWireError) in try reader.string("group") }
            return StoreWireCodec.encode(Int64(try await metadata.deleteOffsets(group: group)))
        }
    }

    // MARK: Retained messages

    private func registerRetained(on server: RemotingServer) {
        let metadata = self.metadata
        serve(server, .setRetained) { request, _ in
            let message = try Self.arguments(request) { reader throws(StoreWireError) in try RetainedMessage(from: &reader) }
            try await metadata.setRetained(message)
            return ByteBuffer()
        }
        serve(server, .deleteRetained) { request, _ in
            let topic = try Self.arguments(request) { reader throws(StoreWireError) in try reader.string("topic") }
            return StoreWireCodec.encode(try await metadata.deleteRetained(topic: topic))
        }
        serve(server, .retainedByTopic) { request, _ in
            let (topic, now) = try Self.arguments(request) { reader throws(StoreWireError) in (try reader.string("topic"), try Int64?(from: &reader)) }
            return StoreWireCodec.encode(try await metadata.retained(topic: topic, nowMillis: now))
        }
        serve(server, .retainedMatching) { request, _ in
            let (filterText, now, limit) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("topic filter"), try Int64?(from: &reader), try reader.integer("limit", as: Int64.self))
            }
            let filter: TopicFilter
            do {
                filter = try TopicFilter(filterText)
            } catch {
                throw RemotingResponseError(.storeInvalidArgument, "invalid topic filter '\(filterText)': \(error)")
            }
            let bounded = Int(clamping: max(0, limit))
            return StoreWireCodec.encode(try await metadata.retained(matching: filter, nowMillis: now, limit: bounded))
        }
        serve(server, .retainedCount) { _, _ in
            StoreWireCodec.encode(Int64(try await metadata.retainedCount()))
        }
        serve(server, .deleteExpiredRetained) { request, _ in
            let now = try Self.arguments(request) { reader throws(StoreWireError) in try reader.integer("now", as: Int64.self) }
            return StoreWireCodec.encode(Int64(try await metadata.deleteExpiredRetained(nowMillis: now)))
        }
    }

    // MARK: Sessions and their journal

    private func registerOwnership(on server: RemotingServer) {
        let ownership = self.ownership
        serve(server, .claimSession) { request, context in
            let clientIdentifier = try Self.arguments(request) { reader throws(StoreWireError) in try reader.string("client identifier") }
            guard let connection = context.connection else { throw RemotingResponseError(.systemError, "no connection to claim on") }
            let token = try await ownership.claim(clientIdentifier, by: connection) { holder, clientIdentifier, claimID in
                var body = ByteBuffer()
                clientIdentifier.write(to: &body)
                body.writeInteger(claimID)
                holder.sendOneway(.request(code: StoreNodeRequestCode.takeover.rawValue, body: body)).whenFailure { _ in
                    // The holder's connection is closing: its close ends the takeover.
                }
            }.get()
            var body = ByteBuffer()
            body.writeInteger(token)
            return body
        }
        serveOnLoop(server, .releaseSession) { request, _ in
            let (clientIdentifier, token) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try reader.integer("token", as: UInt64.self))
            }
            ownership.release(clientIdentifier, token: token)
        }
        serveOnLoop(server, .takeoverDone) { request, _ in
            let (clientIdentifier, claimID) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try reader.integer("claim id", as: UInt64.self))
            }
            ownership.takeoverDone(clientIdentifier, claimID: claimID)
        }
    }

    private func registerSessions(on server: RemotingServer) {
        let metadata = self.metadata
        serve(server, .putSession) { request, _ in
            let record = try Self.arguments(request) { reader throws(StoreWireError) in try SessionRecord(from: &reader) }
            try await metadata.putSession(record)
            return ByteBuffer()
        }
        serve(server, .getSession) { request, _ in
            StoreWireCodec.encode(try await metadata.session(clientIdentifier: try Self.clientIdentifier(request)))
        }
        serve(server, .allSessions) { _, _ in
            StoreWireCodec.encode(try await metadata.allSessions())
        }
        serve(server, .deleteSession) { request, _ in
            StoreWireCodec.encode(try await metadata.deleteSession(clientIdentifier: try Self.clientIdentifier(request)))
        }
        serve(server, .addPendingPubRel) { request, _ in
            let (client, packet) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try reader.integer("packet identifier", as: UInt16.self))
            }
            return StoreWireCodec.encode(try await metadata.addPendingPubRel(clientIdentifier: client, packetIdentifier: packet))
        }
        serve(server, .removePendingPubRel) { request, _ in
            let (client, packet) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try reader.integer("packet identifier", as: UInt16.self))
            }
            return StoreWireCodec.encode(try await metadata.removePendingPubRel(clientIdentifier: client, packetIdentifier: packet))
        }
        serve(server, .setWill) { request, _ in
            let (client, will) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try StoredWill?(from: &reader))
            }
            try await metadata.setWill(clientIdentifier: client, will)
            return ByteBuffer()
        }
        serve(server, .markConnected) { request, _ in
            let (client, gateway, version, expiry) = try Self.arguments(request) { reader throws(StoreWireError) in
                let client = try reader.string("client identifier")
                let gateway = try String?(from: &reader)
                let version: MQTTProtocolVersion? = try reader.bool("protocol version flag")
                    ? try reader.rawValue("protocol version", as: MQTTProtocolVersion.self) : nil
                return (client, gateway, version, try UInt32?(from: &reader))
            }
            try await metadata.markConnected(clientIdentifier: client, gatewayNode: gateway, protocolVersion: version, sessionExpiryIntervalSeconds: expiry)
            return ByteBuffer()
        }
        serve(server, .markDisconnected) { request, _ in
            let (client, at, expiry) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try reader.integer("disconnected at", as: Int64.self), try UInt32?(from: &reader))
            }
            try await metadata.markDisconnected(clientIdentifier: client, atMillis: at, sessionExpiryIntervalSeconds: expiry)
            return ByteBuffer()
        }
        serve(server, .expiredSessions) { request, _ in
            let (now, limit) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.integer("now", as: Int64.self), try reader.integer("limit", as: Int64.self))
            }
            return StoreWireCodec.encode(try await metadata.expiredSessions(nowMillis: now, limit: Int(clamping: max(0, limit))))
        }
        serve(server, .applySessionJournal) { request, _ in
            let (client, entries) = try Self.arguments(request) { reader throws(StoreWireError) in
                (try reader.string("client identifier"), try [SessionJournalEntry](from: &reader))
            }
            try await metadata.applySessionJournal(clientIdentifier: client, entries)
            return ByteBuffer()
        }
        serve(server, .deleteSessionAndOffsets) { request, _ in
            StoreWireCodec.encode(try await metadata.deleteSessionAndOffsets(clientIdentifier: try Self.clientIdentifier(request)))
        }
        serve(server, .sessionDeliveries) { request, _ in
            StoreWireCodec.encode(try await metadata.sessionDeliveries(clientIdentifier: try Self.clientIdentifier(request)))
        }
    }

    // MARK: Helpers

    /// Registers a concurrent handler whose errors are answered with the codes clients map back.
    /// The answer to an append: at once under ASYNC_FLUSH, once on disk under SYNC_FLUSH (where appends
    /// waiting together share one sync).
    private static func answerWhenDurable(
        _ request: RemotingCommand, _ pending: LMQStore.PendingAppend, store: LMQStore, on eventLoop: any EventLoop
    ) -> EventLoopFuture<RemotingCommand> {
        let response = RemotingCommand.response(to: request, body: StoreWireCodec.encode(pending.result))
        guard store.configuration.flushDiskType == .syncFlush else { return eventLoop.makeSucceededFuture(response) }
        let promise = eventLoop.makePromise(of: RemotingCommand.self)
        promise.completeWithTask {
            try await store.waitUntilDurable(pending)
            return response
        }
        return promise.futureResult
    }

    /// A request applied synchronously on the connection's event loop, in arrival order, answered with an
    /// empty body (or the error it threw).
    private func serveOnLoop(
        _ server: RemotingServer, _ code: StoreNodeRequestCode,
        _ handle: @escaping @Sendable (RemotingCommand, RemotingRequestContext) throws -> Void
    ) {
        server.register(code: code.rawValue) { request, context in
            let eventLoop = context.connection?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
            do {
                try handle(request, context)
                return eventLoop.makeSucceededFuture(.response(to: request))
            } catch {
                return eventLoop.makeFailedFuture(Self.responseError(error))
            }
        }
    }

    private func serve(
        _ server: RemotingServer, _ code: StoreNodeRequestCode,
        _ handle: @escaping @Sendable (RemotingCommand, RemotingRequestContext) async throws -> ByteBuffer
    ) {
        server.register(code: code.rawValue) { request, context in
            do {
                return .response(to: request, body: try await handle(request, context))
            } catch {
                throw Self.responseError(error)
            }
        }
    }

    /// A body holding only a client identifier.
    static func clientIdentifier(_ request: RemotingCommand) throws(RemotingResponseError) -> String {
        try arguments(request) { reader throws(StoreWireError) in try reader.string("client identifier") }
    }

    /// Decodes a request body that must hold exactly what `decode` reads.
    static func arguments<T>(_ request: RemotingCommand, _ decode: (inout StoreWireReader) throws(StoreWireError) -> T) throws(RemotingResponseError) -> T {
        var reader = StoreWireReader(request.body)
        do {
            let value = try decode(&reader)
            try reader.finish()
            return value
        } catch {
            throw RemotingResponseError(.invalidParameter, "\(error)")
        }
    }

    /// The response error of a failed request: metadata errors a gateway reacts to get codes of their own.
    static func responseError(_ error: any Error) -> any Error {
        switch error {
        case let error as RemotingResponseError:
            return error
        case let error as StoreWireError:
            return RemotingResponseError(.invalidParameter, "\(error)")
        case let error as LMQMetadataStoreError:
            switch error {
            case .sessionNotFound(let clientIdentifier):
                return RemotingResponseError(.storeSessionNotFound, clientIdentifier)
            case .invalidArgument(let reason):
                return RemotingResponseError(.storeInvalidArgument, reason)
            case .invalidTopic:
                return RemotingResponseError(.storeInvalidArgument, "\(error)")
            case .closed:
                return RemotingResponseError(.serviceNotAvailable, "\(error)")
            case .unsupportedSchemaVersion, .notAMetadataFile, .corruptValue:
                return RemotingResponseError(.systemError, "\(error)")
            }
        case let error as LMQStoreError:
            return RemotingResponseError(.systemError, "\(error)")
        default:
            return error
        }
    }
}
