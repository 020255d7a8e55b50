import MQTTCore
import NIOCore

/// Plays one connection of `ServerConnectionStateMachine` from an arbitrary byte string and checks its
/// invariants after every event (`ServerConnectionInvariantChecker`). The bytes choose the machine's
/// limits, then a sequence of events as the gateway would feed them: client packets (raw bytes through
/// the server's decoder, or packets built from a few choices and encoded, so both garbage and deep
/// protocol states are reached), timer fires, answers of the authenticator and the store (only to
/// requests the machine made, in any order, as the gateway's contract says), delivery offers, a session
/// takeover, a shutdown, and the network closing.
///
/// Used by the libFuzzer target `ServerConnectionFuzzer` (`Fuzz/`) and by the tests that replay the
/// inputs it found (`Fuzz/regressions/state-machine/`). A broken invariant is reported, not trapped, so the
/// caller decides; a precondition failure inside the machine stops the process either way.
public enum ServerConnectionFuzzDriver {
    /// The most events one input plays; longer inputs are cut there, which keeps every run short.
    public static let maximumEvents = 256

    /// What one input reached: for telling whether the fuzzer gets deep into the protocol.
    public struct Statistics: Sendable, Hashable, CustomStringConvertible {
        public var events = 0
        public var packetsReceived = 0
        public var decodeErrors = 0
        public var connectionsAccepted = 0
        public var deliveriesOffered = 0
        public var deliveriesSent = 0
        public var storeAnswers = 0
        public var closedByMachine = 0

        public init() {}

        public mutating func add(_ other: Statistics) {
            events += other.events
            packetsReceived += other.packetsReceived
            decodeErrors += other.decodeErrors
            connectionsAccepted += other.connectionsAccepted
            deliveriesOffered += other.deliveriesOffered
            deliveriesSent += other.deliveriesSent
            storeAnswers += other.storeAnswers
            closedByMachine += other.closedByMachine
        }

        public var description: String {
            "events \(events), packets \(packetsReceived), decode errors \(decodeErrors), accepted \(connectionsAccepted), "
                + "offers \(deliveriesOffered), deliveries sent \(deliveriesSent), store answers \(storeAnswers), closed by the machine \(closedByMachine)"
        }
    }

    /// The outcome of one input.
    public struct Report: Sendable {
        /// Broken invariants, each with the event that broke it; empty when the machine behaved.
        public var violations: [String]
        /// Every event and the actions it produced, when asked for.
        public var trace: [String]
        public var statistics: Statistics
    }

    /// Plays `bytes`. With `keepTrace`, the report lists every event and its actions.
    public static func run(_ bytes: [UInt8], keepTrace: Bool = false) -> Report {
        var run = Run(input: FuzzInput(bytes), keepTrace: keepTrace)
        run.play()
        return Report(
            violations: run.checker.violations, trace: run.trace, statistics: run.statistics
        )
    }
}

/// One input being played.
private struct Run {
    typealias Machine = ServerConnectionStateMachine
    typealias Action = Machine.Action

    var input: FuzzInput
    let keepTrace: Bool
    var trace: [String] = []
    var statistics = ServerConnectionFuzzDriver.Statistics()
    let configuration: Machine.Configuration
    var machine: Machine
    var checker: ServerConnectionInvariantChecker
    var now: Int64 = 1_000_000
    /// The server side of the TCP stream: what the client wrote and the decoder has not consumed.
    var decoder: MQTTPacketDecoder
    var stream = ByteBuffer()
    /// After a decode error the gateway feeds nothing more from the stream.
    var streamDead = false
    var networkClosed = false
    var nextTag: UInt64 = 1
    /// The last `attachSession` request (a resumption is only legal without Clean Start).
    var attachment: Machine.SessionAttachment?

    init(input: FuzzInput, keepTrace: Bool) {
        var input = input
        let limits = input.byte()
        let windows = input.byte()
        let sizes = input.byte()
        configuration = Machine.Configuration(
            connectTimeoutSeconds: 10,
            maximumPacketSizeBytes: [512, 4_096, 1_048_576, 1_048_576][Int(sizes) % 4],
            receiveMaximum: UInt16(1 + limits % 4),
            topicAliasMaximum: UInt16((limits >> 2) % 3),
            maximumQoS: (limits >> 4) & 1 == 0 ? .exactlyOnce : .atLeastOnce,
            serverKeepAliveSeconds: (limits >> 5) & 1 == 0 ? nil : 5,
            maximumSessionExpiryIntervalSeconds: (limits >> 6) & 1 == 0 ? nil : 30,
            maximumTopicFiltersPerPacket: 1 + Int(sizes >> 2) % 4,
            maximumClientIdentifierLengthBytes: 23 + Int(sizes >> 4) % 2 * 100,
            maximumInflightDeliveries: 1 + Int(windows) % 4,
            maximumPacketsBeforeConnAck: Int(windows >> 2) % 5,
            outboundTopicAliasesEnabled: (windows >> 5) & 1 == 0,
            reasonStringsEnabled: (windows >> 6) & 1 == 0
        )
        self.input = input
        self.keepTrace = keepTrace
        machine = Machine(configuration: configuration, connectionIdentifier: "fuzz")
        checker = ServerConnectionInvariantChecker(configuration: configuration)
        decoder = MQTTPacketDecoder(limits: MQTTPacketDecoder.Limits(maxPacketSizeBytes: configuration.maximumPacketSizeBytes))
    }

    mutating func observe(_ actions: [Action], _ label: String) {
        let wasClosed = checker.closed
        if keepTrace { trace.append("\(label) → \(actions)") }
        checker.observe(actions, label, machine: machine)
        if !wasClosed && checker.closed { statistics.closedByMachine += 1 }
        for action in actions {
            if case .attachSession(let request) = action { attachment = request }
        }
    }

    mutating func play() {
        observe(machine.connectionOpened(nowMillis: now), "connectionOpened")
        while !input.isExhausted && !networkClosed && statistics.events < ServerConnectionFuzzDriver.maximumEvents {
            statistics.events += 1
            step()
        }
        if !networkClosed { closeNetwork() }
        statistics.deliveriesSent = checker.deliveriesSent
    }

    mutating func step() {
        // The gateway answers quickly: a pending request is usually answered next.
        if checker.authenticationPending && input.chance(60) { return answerAuthentication() }
        if checker.attachPending && input.chance(60) { return answerAttach() }
        // Raw bytes mostly end the stream with a decode error (the decoder has a fuzzer of its own), so
        // they are rare; built packets, answers and offers take the machine deep into the protocol.
        switch input.choice(32) {
        case 0: rawBytes()
        case 1...10: clientPacket()
        case 11, 12: timer()
        case 13, 14: answerAuthentication()
        case 15, 16: answerAttach()
        case 17...20: answerStore()
        case 21, 22: answerSubscription()
        case 23...27: offerDelivery()
        case 28: serverEvent()
        default: now += Int64(input.byte()) * 10
        }
    }

    // MARK: - The client

    mutating func rawBytes() {
        let count = 1 + input.choice(64)
        stream.writeBytes(input.bytes(upTo: count))
        decodeStream()
    }

    mutating func clientPacket() {
        let packet = makeClientPacket()
        let version: MQTTProtocolVersion
        if let known = decoder.protocolVersion {
            version = known
        } else if case .connect(let connect) = packet {
            version = connect.protocolVersion
        } else {
            version = .v5
        }
        // A packet the encoder refuses (a property the version lacks) is no packet a client could send.
        guard let _ = try? MQTTPacketEncoder(protocolVersion: version).encode(packet, into: &stream) else { return }
        decodeStream()
    }

    /// Hands every whole packet in the stream to the machine, as `ByteToMessageHandler` does.
    mutating func decodeStream() {
        guard !streamDead else {
            stream.clear()
            return
        }
        while true {
            do {
                guard let packet = try decoder.decode(&stream) else { return }
                statistics.packetsReceived += 1
                let label = keepTrace ? "received \(packet)" : "received \(packet.type)"
                checker.packetBeingReceived = packet
                observe(machine.packetReceived(packet, nowMillis: now), label)
                checker.packetBeingReceived = nil
                if checker.connAckSent && checker.accepted && machine.state == .connected && statistics.connectionsAccepted == 0 {
                    statistics.connectionsAccepted = 1
                }
            } catch {
                statistics.decodeErrors += 1
                streamDead = true
                stream.clear()
                observe(machine.decodeFailed(error), "decodeFailed \(error)")
                return
            }
        }
    }

    /// Mostly valid names; `a/+`, `#` and the empty name (without an alias) are decode errors.
    static let topics = ["a/b", "a", "t/1", "t/2", "a/b", "t/1", "$SYS/broker/x", "p/p2p/c1", String(repeating: "l", count: 70), "a/+", "#", ""]
    static let filters = ["a/b", "a/+", "#", "t/#", "+/+", "$share/g/a/b", "$share/g", "a/#/b", "", "sport+"]

    mutating func identifier() -> UInt16 {
        // Mostly the identifiers in flight, so acknowledgements find their flows.
        let known = Array(checker.outbound.keys) + Array(checker.awaitingPubRel)
        if !known.isEmpty && input.chance(70) { return known[input.choice(min(known.count, 256))] }
        return UInt16(input.choice(10))
    }

    mutating func reasonCode(_ codes: [MQTTReasonCode]) -> MQTTReasonCode { input.pick(codes) }

    mutating func makeClientPacket() -> MQTTPacket {
        let isV5 = (decoder.protocolVersion ?? .v5) == .v5
        // Before a CONNECT anything else is a decode error: mostly send one.
        let kind = decoder.protocolVersion == nil && input.chance(95) ? 0 : input.choice(13)
        switch kind {
        case 0:
            let version = input.pick([MQTTProtocolVersion.v3_1, .v3_1_1, .v5, .v5])
            var properties = MQTTProperties()
            if version == .v5 {
                // 0 is a Protocol Error: now and then.
                if input.chance(60) { properties.append(.receiveMaximum(UInt16(input.chance(5) ? 0 : 1 + input.choice(4)))) }
                if input.chance(40) { properties.append(.topicAliasMaximum(UInt16(input.choice(3)))) }
                if input.chance(40) { properties.append(.maximumPacketSize(UInt32(input.pick([20, 40, 70, 200, 5_000])))) }
                if input.chance(50) { properties.append(.sessionExpiryInterval(input.pick([0, 10, UInt32.max]))) }
                if input.chance(10) { properties.append(.authenticationMethod("SCRAM")) }
            }
            let will: ConnectPacket.Will? = input.chance(40)
                ? ConnectPacket.Will(
                    topicName: input.pick(["will/a", "t/1", "$SYS/x"]), payload: ByteBuffer(string: "gone"),
                    qos: input.pick([.atMostOnce, .atLeastOnce, .exactlyOnce]), retain: input.chance(30),
                    properties: version == .v5 && input.chance(50) ? [.willDelayInterval(UInt32(input.choice(20)))] : []
                )
                : nil
            return .connect(ConnectPacket(
                protocolVersion: version, clientIdentifier: input.chance(15) ? input.pick(["", String(repeating: "x", count: 30)]) : input.pick(["c1", "c2"]),
                cleanStart: input.chance(50), keepAliveSeconds: input.pick([0, 1, 5, 60]),
                username: input.chance(20) ? "u" : nil, password: nil, will: will, properties: properties
            ))
        case 1, 2, 3:
            let qos = input.pick([MQTTQoS.atMostOnce, .atLeastOnce, .exactlyOnce])
            var properties = MQTTProperties()
            if isV5 && input.chance(30) { properties.append(.topicAlias(UInt16(input.choice(4)))) }
            if isV5 && input.chance(10) { properties.append(.subscriptionIdentifier(1)) }
            if isV5 && input.chance(10) { properties.append(.messageExpiryInterval(UInt32(input.choice(3)))) }
            return .publish(PublishPacket(
                topicName: input.pick(Self.topics), payload: ByteBuffer(repeating: 0x70, count: Int(input.byte()) * (input.chance(10) ? 8 : 1)),
                qos: qos, retain: input.chance(20), dup: input.chance(15),
                packetIdentifier: qos == .atMostOnce ? nil : UInt16(input.choice(6)), properties: properties
            ))
        case 4:
            return .pubAck(PubAckPacket(packetIdentifier: identifier(), reasonCode: isV5 && input.chance(20) ? .unspecifiedError : .success))
        case 5:
            return .pubRec(PubAckPacket(packetIdentifier: identifier(), reasonCode: isV5 && input.chance(20) ? .quotaExceeded : .success))
        case 6:
            let known = Array(checker.awaitingPubRel)
            let identifier = !known.isEmpty && input.chance(70) ? known[input.choice(min(known.count, 256))] : UInt16(input.choice(6))
            return .pubRel(PubAckPacket(packetIdentifier: identifier))
        case 7:
            return .pubComp(PubAckPacket(packetIdentifier: identifier()))
        case 8:
            var subscriptions: [Subscription] = []
            for _ in 0...input.choice(3) {
                subscriptions.append(Subscription(
                    topicFilter: input.pick(Self.filters), maximumQoS: input.pick([.atMostOnce, .atLeastOnce, .exactlyOnce]),
                    noLocal: isV5 && input.chance(20), retainAsPublished: isV5 && input.chance(20),
                    retainHandling: isV5 ? input.pick(Subscription.RetainHandling.allCases) : .sendOnSubscribe
                ))
            }
            let properties: MQTTProperties = isV5 && input.chance(20) ? [.subscriptionIdentifier(UInt32(1 + input.choice(3)))] : []
            return .subscribe(SubscribePacket(packetIdentifier: UInt16(input.choice(6)), subscriptions: subscriptions, properties: properties))
        case 9:
            var filters: [String] = []
            for _ in 0...input.choice(3) { filters.append(input.pick(Self.filters)) }
            return .unsubscribe(UnsubscribePacket(packetIdentifier: UInt16(input.choice(6)), topicFilters: filters))
        case 10:
            return .pingReq
        case 11:
            var properties = MQTTProperties()
            if isV5 && input.chance(30) { properties.append(.sessionExpiryInterval(input.pick([0, 5, UInt32.max]))) }
            let code = isV5 ? reasonCode([.normalDisconnection, .disconnectWithWillMessage, .unspecifiedError]) : .normalDisconnection
            return .disconnect(DisconnectPacket(reasonCode: code, properties: properties))
        default:
            return .auth(AuthPacket(reasonCode: reasonCode([.success, .continueAuthentication, .reAuthenticate])))
        }
    }

    // MARK: - Time, the gateway's answers and offers

    mutating func timer() {
        now += Int64(input.pick([0, 100, 1_000, 4_000, 8_000, 20_000, 120_000]))
        observe(machine.timerFired(nowMillis: now), "timer at \(now)")
    }

    mutating func answerAuthentication() {
        guard checker.authenticationPending else { return }
        checker.answeredAuthentication()
        if input.chance(80) {
            observe(machine.authenticationCompleted(.allowed), "authentication allowed")
        } else {
            let code = reasonCode([.notAuthorized, .badUserNameOrPassword, .banned, .serverUnavailable, .success, .protocolError])
            observe(machine.authenticationCompleted(.denied(code, detail: "fuzz")), "authentication denied \(code)")
        }
    }

    mutating func answerAttach() {
        guard checker.attachPending else { return }
        let attaching = machine.state == .attachingSession
        if input.chance(85) {
            checker.answeredAttach(failed: false)
            let sessionPresent = input.chance(50)
            var resumption = Machine.SessionResumption()
            if sessionPresent && attachment?.cleanStart == false {
                var used = Set<UInt16>()
                for _ in 0..<input.choice(5) {
                    let identifier = UInt16(1 + input.choice(12))
                    guard used.insert(identifier).inserted else { continue }
                    let qos = input.chance(50) ? MQTTQoS.atLeastOnce : .exactlyOnce
                    let publish = PublishPacket(
                        topicName: "resumed/\(identifier)", payload: ByteBuffer(repeating: 0x72, count: Int(input.byte())), qos: qos,
                        packetIdentifier: identifier
                    )
                    resumption.inflightDeliveries.append(Machine.InflightDelivery(
                        tag: Machine.DeliveryTag(nextTag), packetIdentifier: identifier, publish: publish,
                        released: qos == .exactlyOnce && input.chance(40)
                    ))
                    nextTag += 1
                }
                var inbound = Set<UInt16>()
                for _ in 0..<input.choice(3) { inbound.insert(UInt16(1 + input.choice(5))) }
                resumption.awaitingPubRelPacketIdentifiers = inbound.sorted()
            }
            if attaching { checker.resumed(resumption) }
            observe(
                machine.sessionAttached(sessionPresent: sessionPresent, resumption: resumption, nowMillis: now),
                "session attached present=\(sessionPresent) resumed \(resumption.inflightDeliveries.count)/\(resumption.awaitingPubRelPacketIdentifiers.count)"
            )
            if checker.accepted && machine.state == .connected { statistics.connectionsAccepted = 1 }
        } else {
            checker.answeredAttach(failed: attaching)
            let code = reasonCode([.serverUnavailable, .serverBusy, .success, .quotaExceeded])
            observe(machine.sessionAttachFailed(reasonCode: code, detail: "fuzz"), "session attach failed \(code)")
        }
    }

    mutating func answerStore() {
        let pending = checker.storeUnanswered
        let identifier: UInt16
        if !pending.isEmpty {
            // Any order: the machine must still acknowledge in arrival order.
            identifier = pending[input.choice(min(pending.count, 256))]
            checker.answeredStore(identifier)
        } else {
            // An answer for a flow of an earlier connection: ignored.
            identifier = UInt16(input.choice(8))
            guard !checker.storeOrder.contains(where: { $0.identifier == identifier }) else { return }
        }
        statistics.storeAnswers += 1
        if input.chance(85) {
            observe(machine.publishStored(packetIdentifier: identifier), "store took \(identifier)")
        } else {
            let code = reasonCode([.quotaExceeded, .notAuthorized, .implementationSpecificError, .success, .topicNameInvalid])
            observe(machine.publishRefused(packetIdentifier: identifier, reasonCode: code), "store refused \(identifier) \(code)")
        }
    }

    mutating func answerSubscription() {
        if input.chance(60), let (identifier, count) = checker.pendingSubscribes.min(by: { $0.key < $1.key }) {
            checker.answeredSubscribe(identifier)
            var codes: [MQTTReasonCode] = []
            for _ in 0..<count {
                codes.append(reasonCode([.success, .grantedQoS1, .grantedQoS2, .notAuthorized, .topicFilterInvalid, .quotaExceeded, .noSubscriptionExisted]))
            }
            observe(machine.subscribeCompleted(packetIdentifier: identifier, reasonCodes: codes), "subscribe \(identifier) completed \(codes)")
        } else if let (identifier, count) = checker.pendingUnsubscribes.min(by: { $0.key < $1.key }) {
            checker.answeredUnsubscribe(identifier)
            var codes: [MQTTReasonCode] = []
            for _ in 0..<count { codes.append(reasonCode([.success, .noSubscriptionExisted, .notAuthorized, .grantedQoS1])) }
            observe(machine.unsubscribeCompleted(packetIdentifier: identifier, reasonCodes: codes), "unsubscribe \(identifier) completed \(codes)")
        }
    }

    mutating func offerDelivery() {
        let tag = Machine.DeliveryTag(nextTag)
        nextTag += 1
        statistics.deliveriesOffered += 1
        var properties = MQTTProperties()
        if input.chance(15) { properties.append(.messageExpiryInterval(UInt32(input.choice(3)))) }
        if input.chance(15) { properties.append(.userProperty("k", String(repeating: "v", count: input.choice(100)))) }
        let qos = input.pick([MQTTQoS.atMostOnce, .atLeastOnce, .exactlyOnce])
        let publish = PublishPacket(
            topicName: input.pick(["out/1", "out/2", "a/b", String(repeating: "o", count: 90)]),
            payload: ByteBuffer(repeating: 0x64, count: Int(input.byte()) * (input.chance(10) ? 16 : 1)),
            qos: qos, retain: input.chance(20), packetIdentifier: qos == .atMostOnce || input.chance(50) ? nil : UInt16(input.choice(4)),
            properties: properties
        )
        let delivery = Machine.Delivery(tag: tag, publish: publish)
        if checker.closed || networkClosed {
            // A closed machine only hands the offer back.
            let actions = machine.deliveryRequested(delivery)
            if keepTrace { trace.append("offer \(tag) after close → \(actions)") }
            if actions != [.retryDeliveryLater(tag)] { checker.fail("offer \(tag) after close: \(actions)") }
            return
        }
        checker.offering(tag)
        let actions = machine.deliveryRequested(delivery)
        observe(actions, "offer \(tag) QoS \(qos.rawValue), \(publish.payload.readableBytes) bytes")
        checker.offerEnded("offer \(tag)", actions)
    }

    mutating func serverEvent() {
        switch input.choice(6) {
        case 0: observe(machine.sessionTakenOver(), "session taken over")
        case 1: observe(machine.serverShuttingDown(), "server shutting down")
        case 2, 3:
            guard !streamDead else { return }
            streamDead = true
            let violation = input.pick([MQTTDecodeError.Violation.truncated, .variableByteIntegerTooLong, .packetTooLarge(sizeBytes: 99_999, limitBytes: 64), .unsupportedProtocolVersion(9)])
            observe(machine.decodeFailed(MQTTDecodeError(violation, packetType: nil, byteOffset: 0)), "decodeFailed \(violation)")
        default: closeNetwork()
        }
    }

    /// The network connection closed (the client went away, or the gateway closed it after `close`).
    mutating func closeNetwork() {
        networkClosed = true
        observe(machine.connectionClosed(), "connectionClosed")
        checker.finished(machine)
        // Whatever comes late (answers, timers, packets already read) must do nothing now.
        checker.networkClosedObserved()
        observe(machine.timerFired(nowMillis: now + 10_000_000), "timer after close")
        observe(machine.packetReceived(.pingReq, nowMillis: now), "PINGREQ after close")
        observe(machine.publishStored(packetIdentifier: 1), "store answer after close")
        observe(machine.serverShuttingDown(), "shutdown after close")
        observe(machine.sessionTakenOver(), "takeover after close")
        observe(machine.connectionClosed(), "connectionClosed again")
    }
}
