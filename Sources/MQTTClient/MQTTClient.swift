import Logging
import MQTTCore
import NIOCore
import NIOPosix

/// An MQTT 3.1.1 / 5.0 client with async/await.
///
/// ```swift
/// let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: 1883, protocolVersion: .v5))
/// try await client.connect()
/// try await client.subscribe(to: "sensors/+/temp", qos: .atLeastOnce)
/// try await client.publish(to: "sensors/7/temp", payload: "21.5", qos: .atLeastOnce)
/// for await message in client.messages {
///     print(message.topic, message.payloadString)
/// }
/// ```
///
/// The client is thread-safe: all of its state lives on one event loop (`eventLoop`), and every method
/// may be called from any task. One client object holds one connection at a time and may be connected
/// again after the connection closed; its session (QoS 1 and 2 flows in progress) carries over when the
/// server resumes it. Call `shutdown()` when done; pending calls then fail with `MQTTClientError.shutdown`.
///
/// Every pending call finishes when its connection closes, with one exception the protocol asks for:
/// if the session outlives the connection (3.1.1 with `cleanStart` false, 5.0 with a Session Expiry
/// Interval above 0), a QoS 1 or 2 `publish` still awaiting its acknowledgement stays pending across the
/// drop. The next `connect()` resends it (DUP set) if the server resumed the session, and it completes
/// on that acknowledgement; if the server did not, it fails with `MQTTClientError.sessionNotResumed`.
/// Calls are not cancelled by task cancellation; they end with the connection or the client.
public final class MQTTClient: Sendable {
    /// The configuration every `connect()` uses.
    public let configuration: Configuration
    /// The event loop all of this client's connections and state live on.
    public let eventLoop: any EventLoop
    /// Every message the server delivers, across all connections of this client, until `shutdown()`.
    ///
    /// QoS 1 and 2 messages are acknowledged once they are in this stream's buffer (at most
    /// `Configuration.maxBufferedMessages`). Read it from one long-lived task: an `AsyncStream` hands
    /// each element to one reader, and cancelling the task that waits in it ends the stream for good, so
    /// put time limits around your own processing rather than around the `for await` loop.
    public let messages: AsyncStream<MQTTMessage>

    private let core: NIOLoopBoundBox<MQTTClientCore>

    /// Creates a client; it does not connect until `connect()`.
    ///
    /// - Parameters:
    ///   - configuration: server, identity, session and limits.
    ///   - eventLoopGroup: where the connection runs; one event loop of it is chosen for the client's lifetime.
    ///   - logger: connection events are logged at debug level, closes with an error at info level.
    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "mqtt-client")
    ) {
        self.configuration = configuration
        let eventLoop = eventLoopGroup.next()
        self.eventLoop = eventLoop
        let (messages, continuation) = AsyncStream.makeStream(
            of: MQTTMessage.self,
            bufferingPolicy: .bufferingOldest(max(1, configuration.maxBufferedMessages))
        )
        self.messages = messages
        var logger = logger
        logger[metadataKey: "mqtt.client"] = "\(configuration.clientIdentifier)"
        self.core = NIOLoopBoundBox.makeBoxSendingValue(
            MQTTClientCore(configuration: configuration, eventLoop: eventLoop, messages: continuation, logger: logger),
            eventLoop: eventLoop
        )
    }

    deinit {
        // Nothing may stay pending once the client is gone.
        let core = self.core
        eventLoop.execute { core.value.shutdown() }
    }

    // MARK: - Connection

    /// Opens a connection: TCP, then CONNECT, and returns the server's CONNACK once it accepted.
    ///
    /// `sessionPresent` of the result says whether the server resumed an existing session. If it did,
    /// unacknowledged QoS 1/2 messages of that session are resent first ([MQTT-4.4.0-1]).
    ///
    /// - Parameter cleanStart: overrides `configuration.cleanStart` for this connection.
    /// - Throws: `MQTTClientError.connectionRefused` with the CONNACK reason code, `.connectTimeout`,
    ///   `.connectionError`, `.alreadyConnected`, `.shutdown`, ...
    @discardableResult
    public func connect(cleanStart: Bool? = nil) async throws -> ConnAckPacket {
        let promise = eventLoop.makePromise(of: ConnAckPacket.self)
        let core = self.core
        eventLoop.execute { core.value.connect(cleanStart: cleanStart, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// Sends DISCONNECT and closes the connection; returns once it is closed. The server discards the
    /// will ([MQTT-3.1.2-10]) unless `reasonCode` is `.disconnectWithWillMessage` (5.0).
    /// Does nothing if the client is not connected.
    ///
    /// - Parameters:
    ///   - reasonCode: 5.0 only; 3.1.1 DISCONNECT has no body.
    ///   - properties: 5.0 only, e.g. a new Session Expiry Interval or a Reason String.
    public func disconnect(reasonCode: MQTTReasonCode = .normalDisconnection, properties: MQTTProperties = []) async throws {
        let promise = eventLoop.makePromise(of: Void.self)
        let core = self.core
        eventLoop.execute { core.value.disconnect(reasonCode: reasonCode, properties: properties, promise: promise) }
        try await promise.futureResult.get()
    }

    /// Closes the TCP connection without DISCONNECT, as a crash or network failure would, so the server
    /// publishes the will. Returns once the connection is closed.
    public func closeAbruptly() async {
        let promise = eventLoop.makePromise(of: Void.self)
        let core = self.core
        eventLoop.execute { core.value.closeAbruptly(promise: promise) }
        // A close request only ever succeeds.
        try? await promise.futureResult.get()
    }

    /// Fails every pending call with `MQTTClientError.shutdown`, closes the connection (without
    /// DISCONNECT) and ends `messages`. The client cannot be used afterwards.
    public func shutdown() async {
        let core = self.core
        try? await eventLoop.submit { core.value.shutdown() }.get()
    }

    /// Waits until the current connection closes and returns why: nil when `disconnect()`,
    /// `closeAbruptly()` closed it, an error otherwise (the server closed it, keep-alive timeout, ...).
    /// Returns at once, with the reason of the last close, when not connected.
    public func waitUntilClosed() async -> MQTTClientError? {
        let promise = eventLoop.makePromise(of: MQTTClientError?.self)
        let core = self.core
        eventLoop.execute { core.value.waitUntilClosed(promise: promise) }
        return (try? await promise.futureResult.get()) ?? nil
    }

    /// Whether a connection is open and accepted by the server.
    public var isConnected: Bool {
        get async {
            let core = self.core
            return (try? await eventLoop.submit { core.value.isConnected }.get()) ?? false
        }
    }

    /// The Client Identifier a 5.0 server assigned because `configuration.clientIdentifier` was empty.
    public var assignedClientIdentifier: String? {
        get async {
            let core = self.core
            return (try? await eventLoop.submit { core.value.assignedClientIdentifier }.get()) ?? nil
        }
    }

    // MARK: - Publish

    /// Publishes a message and returns when the protocol says it is delivered to the server: after the
    /// write for QoS 0, PUBACK for QoS 1, PUBCOMP for QoS 2.
    ///
    /// QoS 1 and 2 messages beyond the inflight window (`configuration.maxInflightPublishes`, lowered by
    /// a 5.0 server's Receive Maximum) wait in order for a free slot.
    ///
    /// - Throws: `MQTTClientError.publishRefused` with the 5.0 reason code of a refusing PUBACK/PUBREC,
    ///   `.invalidTopicName`, `.qosNotSupported`, `.retainNotSupported`, `.encodeFailed` (over the server's
    ///   Maximum Packet Size), `.notConnected`, or the reason the connection closed.
    public func publish(
        to topic: String,
        payload: ByteBuffer,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        properties: MQTTProperties = []
    ) async throws {
        let packet = PublishPacket(topicName: topic, payload: payload, qos: qos, retain: retain, properties: properties)
        let promise = eventLoop.makePromise(of: Void.self)
        let core = self.core
        eventLoop.execute { core.value.publish(packet, promise: promise) }
        try await promise.futureResult.get()
    }

    /// Publishes a UTF-8 text payload; see `publish(to:payload:qos:retain:properties:)` with a `ByteBuffer`.
    public func publish(
        to topic: String,
        payload: String,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        properties: MQTTProperties = []
    ) async throws {
        try await publish(to: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, properties: properties)
    }

    // MARK: - Subscriptions

    /// Subscribes and returns the server's SUBACK: one reason code per subscription, in order, with the
    /// granted QoS or why the subscription was refused. Refusals do not throw here; see `subscribe(to:qos:)`.
    ///
    /// - Throws: `MQTTClientError.invalidTopicFilter`, `.noTopicFilters`, `.notConnected`, or the reason the
    ///   connection closed.
    @discardableResult
    public func subscribe(to subscriptions: [Subscription], properties: MQTTProperties = []) async throws -> SubAckPacket {
        let promise = eventLoop.makePromise(of: SubAckPacket.self)
        let core = self.core
        eventLoop.execute { core.value.subscribe(subscriptions, properties: properties, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// Subscribes to one topic filter and returns the QoS the server granted.
    ///
    /// - Throws: `MQTTClientError.subscriptionRefused` if the server refused it, and the errors of
    ///   `subscribe(to:properties:)`.
    @discardableResult
    public func subscribe(to topicFilter: String, qos: MQTTQoS = .atMostOnce) async throws -> MQTTQoS {
        let subAck = try await subscribe(to: [Subscription(topicFilter: topicFilter, maximumQoS: qos)])
        let reasonCode = subAck.reasonCodes[0]
        guard !reasonCode.isFailure, let granted = MQTTQoS(rawValue: reasonCode.rawValue) else {
            throw MQTTClientError.subscriptionRefused(topicFilter: topicFilter, reasonCode: reasonCode, reasonString: subAck.properties.reasonString)
        }
        return granted
    }

    /// Removes subscriptions and returns the server's UNSUBACK (in 5.0 with one reason code per filter;
    /// in 3.1.1 without reason codes).
    @discardableResult
    public func unsubscribe(from topicFilters: [String], properties: MQTTProperties = []) async throws -> UnsubAckPacket {
        let promise = eventLoop.makePromise(of: UnsubAckPacket.self)
        let core = self.core
        eventLoop.execute { core.value.unsubscribe(topicFilters, properties: properties, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// Removes one subscription.
    ///
    /// - Throws: `MQTTClientError.unsubscribeRefused` if a 5.0 server answered with a failure reason code
    ///   (`.noSubscriptionExisted` is not a failure), and the errors of `unsubscribe(from:properties:)`.
    public func unsubscribe(from topicFilter: String) async throws {
        let unsubAck = try await unsubscribe(from: [topicFilter])
        if let reasonCode = unsubAck.reasonCodes.first, reasonCode.isFailure {
            throw MQTTClientError.unsubscribeRefused(topicFilter: topicFilter, reasonCode: reasonCode, reasonString: unsubAck.properties.reasonString)
        }
    }
}
