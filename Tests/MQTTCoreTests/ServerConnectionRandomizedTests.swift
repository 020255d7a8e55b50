import MQTTCore
import NIOCore
import Testing

/// Seeded random event sequences against the machine, checking invariants after every event: nothing but
/// CONNACK before CONNACK, at most one CONNACK, no packet identifier used twice in flight, never more
/// deliveries in flight than the client's window, acknowledgements in arrival order, every delivery
/// finished at most once, every packet encodable within the client's Maximum Packet Size, the session
/// detached exactly once, a legal client never disconnected, and a closed machine staying closed.
/// Replay a failure with `MQTT_TEST_SEED=<seed>`.
@Suite("Server connection: seeded random event sequences")
struct ServerConnectionRandomizedTests {
    typealias H = ServerHarness
    typealias Machine = ServerConnectionStateMachine
    typealias Action = Machine.Action

    struct Statistics {
        var runs = 0
        var connected = 0
        var deliveriesSent = 0
        var deliveriesAcknowledged = 0
        var deliveriesDeferred = 0
        var deliveriesDropped = 0
        var inboundStored = 0
        var inboundQoS2Completed = 0
        var resends = 0
        var violationsClosed = 0
        var events = 0
    }

    @Test("random sequences keep every invariant")
    func randomSequences() {
        var (rng, seed) = SeededGenerator.fromEnvironment("ServerConnectionRandomizedTests.randomSequences")
        var statistics = Statistics()
        for run in 0..<400 {
            var simulation = Simulation(rng: SeededGenerator(seed: rng.next()), legal: run % 2 == 0, seed: seed, run: run)
            simulation.play(&statistics)
            if simulation.failed { break }
        }
        print("ServerConnectionRandomizedTests: \(statistics)")
        // The sequences must reach the interesting states, or the invariants prove little.
        #expect(statistics.connected > 200)
        #expect(statistics.deliveriesSent > 1_000)
        #expect(statistics.deliveriesAcknowledged > 500)
        #expect(statistics.deliveriesDeferred > 50)
        #expect(statistics.deliveriesDropped > 10)
        #expect(statistics.inboundStored > 1_000)
        #expect(statistics.inboundQoS2Completed > 100)
        #expect(statistics.resends > 50)
        #expect(statistics.violationsClosed > 20)
    }

    /// One connection: a client, a store and a gateway played by the random generator, and a model of
    /// what the machine may do.
    struct Simulation {
        var rng: SeededGenerator
        /// Only legal client behaviour: the machine must then never close on its own.
        let legal: Bool
        let seed: UInt64
        let run: Int
        var failed = false

        var configuration = Machine.Configuration()
        var machine: Machine
        var now = H.t0
        var version = MQTTProtocolVersion.v3_1_1
        var encoder = MQTTPacketEncoder(protocolVersion: .v3_1_1)
        var keepAliveSeconds: UInt16 = 0
        var clientReceiveMaximum = Int(UInt16.max)
        var lastClientPacketAt = H.t0
        var trace: [String] = []

        // What has been seen.
        var connAckSent = false
        var accepted = false
        var closed = false
        var closeExpected = false
        var attachRequested = false
        /// The store could not attach: there is nothing to detach.
        var attachFailed = false
        var detachCount = 0

        // Outbound: identifier → delivery, as the client sees it.
        struct Outbound {
            var qos: MQTTQoS
            var released: Bool
            var tag: Machine.DeliveryTag
            var sentHere: Bool
        }
        var outstanding: [UInt16: Outbound] = [:]
        var unfinishedTags: Set<Machine.DeliveryTag> = []
        var offeredTag: Machine.DeliveryTag?
        var offerAnswered = false
        var nextTag: UInt64 = 1

        // Inbound: the client's own flows.
        struct ClientFlow {
            var qos: MQTTQoS
            var topic: String
            /// PUBREC arrived (QoS 2): the client may send PUBREL.
            var pubRecReceived = false
            var released = false
        }
        var clientFlows: [UInt16: ClientFlow] = [:]
        var clientSubscribes: Set<UInt16> = []
        var clientUnsubscribes: Set<UInt16> = []
        var nextClientIdentifier: UInt16 = 1
        /// Identifiers handed to the store, in arrival order, until their first acknowledgement.
        var storeQueue: [(identifier: UInt16, qos: MQTTQoS)] = []
        var storeUnanswered: [UInt16] = []
        var serverAwaitingPubRel: Set<UInt16> = []
        var gatewaySubscribes: [UInt16: Int] = [:]
        var gatewayUnsubscribes: [UInt16: Int] = [:]
        var clientAliases: [UInt16: String] = [:]

        init(rng: SeededGenerator, legal: Bool, seed: UInt64, run: Int) {
            self.rng = rng
            self.legal = legal
            self.seed = seed
            self.run = run
            self.machine = Machine(connectionIdentifier: "r\(run)")
        }

        // MARK: Random helpers

        mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
        mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
        mutating func pick<T>(_ values: [T]) -> T { values[int(0...(values.count - 1))] }

        mutating func fail(_ message: String) {
            guard !failed else { return }
            failed = true
            Issue.record("seed \(seed) run \(run): \(message)\ntrace:\n\(trace.suffix(25).joined(separator: "\n"))")
        }

        var window: Int { min(clientReceiveMaximum, configuration.maximumInflightDeliveries) }

        // MARK: Playing

        mutating func play(_ statistics: inout Statistics) {
            statistics.runs += 1
            configuration = Machine.Configuration(
                receiveMaximum: UInt16(int(1...4)), topicAliasMaximum: UInt16(int(0...2)),
                maximumQoS: chance(80) ? .exactlyOnce : .atLeastOnce,
                maximumInflightDeliveries: int(1...4), maximumPacketsBeforeConnAck: 4
            )
            machine = Machine(configuration: configuration, connectionIdentifier: "r\(run)")
            observe(machine.connectionOpened(nowMillis: now), "opened")
            handshake(&statistics)
            var steps = 0
            while !failed && !closed && steps < 150 {
                steps += 1
                statistics.events += 1
                step(&statistics)
            }
            // Closed stays closed.
            for _ in 0..<5 where !failed {
                afterCloseEvent()
            }
            if !failed {
                observe(machine.connectionClosed(), "connectionClosed")
                closed = true
                if machine.state != .closed { fail("state \(machine.state) after connectionClosed") }
                let expectedDetachments = attachRequested && !attachFailed ? 1 : 0
                if detachCount != expectedDetachments { fail("\(detachCount) detachSession, expected \(expectedDetachments)") }
                afterCloseEvent()
            }
        }

        mutating func handshake(_ statistics: inout Statistics) {
            version = pick([.v3_1, .v3_1_1, .v5, .v5])
            let cleanStart = chance(50)
            // What the client knows of its session before it connects: inbound QoS 2 flows awaiting PUBREL
            // count against the server's Receive Maximum from the first packet on.
            let sessionPresent = !cleanStart && chance(70)
            var resumedInbound: [UInt16] = []
            if sessionPresent {
                for _ in 0..<int(0...2) {
                    let identifier = UInt16(int(200...205))
                    if !resumedInbound.contains(identifier) { resumedInbound.append(identifier) }
                }
                for identifier in resumedInbound {
                    clientFlows[identifier] = ClientFlow(qos: .exactlyOnce, topic: "x", pubRecReceived: true)
                }
            }
            var identifier = "client-\(int(0...9))"
            if version != .v3_1 && chance(15) && (cleanStart || version == .v5) { identifier = "" }
            if !legal && chance(5) { identifier = "" }
            keepAliveSeconds = pick([0, 2, 5, 30])
            var properties = MQTTProperties()
            if version == .v5 {
                clientReceiveMaximum = int(1...4)
                properties.append(.receiveMaximum(UInt16(clientReceiveMaximum)))
                properties.append(.topicAliasMaximum(UInt16(int(0...2))))
                if chance(40) { properties.append(.maximumPacketSize(70)) }
                if !cleanStart || chance(50) { properties.append(.sessionExpiryInterval(UInt32(int(0...100)))) }
            }
            let will: ConnectPacket.Will? = chance(50) ? H.will(qos: configuration.maximumQoS) : nil
            let connect = H.connect(version, clientIdentifier: identifier, cleanStart: cleanStart, keepAliveSeconds: keepAliveSeconds, will: will, properties: properties)
            clientSends(.connect(connect), "CONNECT \(version) clean=\(cleanStart) id=\(identifier)")
            guard !closed else { return }

            // Packets before CONNACK are held.
            for _ in 0..<int(0...2) where !closed {
                if chance(50) { clientSends(.pingReq, "early PINGREQ") } else { clientPublish() }
            }
            guard !closed else { return }
            if chance(legal ? 5 : 10) {
                closeExpected = true
                observe(machine.authenticationCompleted(.denied(.notAuthorized, detail: "random")), "auth denied")
                return
            }
            observe(machine.authenticationCompleted(.allowed), "auth allowed")
            guard !closed else { return }
            if chance(4) {
                closeExpected = true
                attachFailed = true
                observe(machine.sessionAttachFailed(detail: "random"), "attach failed")
                return
            }
            var resumption = Machine.SessionResumption()
            if sessionPresent {
                var identifiers = Set<UInt16>()
                for _ in 0..<int(0...4) {
                    let identifier = UInt16(int(1...12))
                    guard identifiers.insert(identifier).inserted else { continue }
                    let qos: MQTTQoS = chance(50) ? .atLeastOnce : .exactlyOnce
                    let released = qos == .exactlyOnce && chance(40)
                    let tag = Machine.DeliveryTag(nextTag)
                    nextTag += 1
                    let payload = String(repeating: "r", count: int(0...80))
                    resumption.inflightDeliveries.append(Machine.InflightDelivery(
                        tag: tag, packetIdentifier: identifier, publish: H.publish("resumed/\(identifier)", qos: qos, payload: payload), released: released
                    ))
                    outstanding[identifier] = Outbound(qos: qos, released: released, tag: tag, sentHere: false)
                    unfinishedTags.insert(tag)
                }
                resumption.awaitingPubRelPacketIdentifiers = resumedInbound
                serverAwaitingPubRel.formUnion(resumedInbound)
            }
            let actions = machine.sessionAttached(sessionPresent: sessionPresent, resumption: resumption, nowMillis: now)
            statistics.resends += H.sent(actions).filter { packet in
                switch packet {
                case .publish(let publish): return publish.dup
                case .pubRel: return true
                default: return false
                }
            }.count
            observe(actions, "attached present=\(sessionPresent) resumption=\(resumption.inflightDeliveries.count)/\(resumption.awaitingPubRelPacketIdentifiers.count)")
            if accepted { statistics.connected += 1 }
        }

        mutating func step(_ statistics: inout Statistics) {
            // A legal client keeps the connection alive.
            if keepAliveSeconds > 0 && now - lastClientPacketAt >= Int64(keepAliveSeconds) * 1_000 {
                clientSends(.pingReq, "keep-alive PINGREQ")
                return
            }
            var roll = int(0...99)
            // Endings are rare, so connections live long enough to fill windows and wrap queues.
            if (93..<97).contains(roll) && !chance(20) { roll = 28 }
            switch roll {
            case 0..<18:
                clientPublish()
            case 18..<28:
                answerStore(&statistics)
            case 28..<45:
                deliver(&statistics)
            case 45..<62:
                acknowledgeDelivery(&statistics)
            case 62..<68:
                releaseInbound(&statistics)
            case 68..<73:
                subscribeOrUnsubscribe()
            case 73..<78:
                completeSubscription()
            case 78..<80:
                resendInbound()
            case 80..<90:
                now += Int64(int(0...300))
                observe(machine.timerFired(nowMillis: now), "timer at \(now)")
            case 90..<93:
                clientSends(.pingReq, "PINGREQ")
            case 93..<95:
                closeExpected = true
                let code: MQTTReasonCode = version == .v5 ? pick([.normalDisconnection, .disconnectWithWillMessage, .unspecifiedError]) : .normalDisconnection
                clientSends(.disconnect(DisconnectPacket(reasonCode: code)), "DISCONNECT \(code)")
            case 95:
                closeExpected = true
                observe(pick([true, false]) ? machine.sessionTakenOver() : machine.serverShuttingDown(), "takeover or shutdown")
            case 96:
                closeExpected = true
                observe(machine.connectionClosed(), "connection lost")
                closed = true
                if machine.state != .closed { fail("not closed after connectionClosed") }
            default:
                if legal {
                    clientSends(.pingReq, "PINGREQ")
                } else {
                    misbehave(&statistics)
                }
            }
        }

        /// Something a broken client does; most of it must close the connection.
        mutating func misbehave(_ statistics: inout Statistics) {
            closeExpected = true
            switch int(0...7) {
            case 0: clientSends(.connect(H.connect(version)), "second CONNECT")
            case 1: clientSends(pick([.pingResp, .connAck(ConnAckPacket()), .subAck(SubAckPacket(packetIdentifier: 1, reasonCodes: [.success]))]), "server-only packet")
            case 2: observe(machine.decodeFailed(MQTTDecodeError(.truncated, packetType: .publish, byteOffset: 3)), "decode failure")
            case 3:
                now += Int64(keepAliveSeconds) * 2_000 + 1
                observe(machine.timerFired(nowMillis: now), "timer after silence")
                if keepAliveSeconds > 0 && accepted && !closed { fail("silence past keep alive did not close") }
            case 4: clientSends(.pubAck(PubAckPacket(packetIdentifier: identifierNotInFlight())), "unknown PUBACK")
            case 5: clientSends(.pubRec(PubAckPacket(packetIdentifier: identifierNotInFlight())), "unknown PUBREC")
            case 6:
                // Flood past the server's Receive Maximum.
                for _ in 0...Int(configuration.receiveMaximum) where !closed {
                    clientPublish(ignoringLimits: true)
                }
            default:
                if version == .v5 {
                    clientSends(.publish(H.publish("", properties: [.topicAlias(UInt16(int(0...4)))])), "alias abuse")
                } else {
                    clientSends(.pingReq, "PINGREQ")
                }
            }
            if closed { statistics.violationsClosed += 1 }
        }

        mutating func identifierNotInFlight() -> UInt16 {
            var identifier = UInt16(int(300...400))
            while outstanding[identifier] != nil { identifier += 1 }
            return identifier
        }

        // MARK: Client actions

        mutating func clientSends(_ packet: MQTTPacket, _ label: String) {
            now += Int64(int(0...20))
            lastClientPacketAt = now
            observe(machine.packetReceived(packet, nowMillis: now), label)
        }

        mutating func freeClientIdentifier() -> UInt16? {
            for _ in 0..<16 {
                let identifier = nextClientIdentifier
                nextClientIdentifier = identifier >= 60 ? 1 : identifier + 1
                if clientFlows[identifier] == nil && !clientSubscribes.contains(identifier) && !clientUnsubscribes.contains(identifier) {
                    return identifier
                }
            }
            return nil
        }

        mutating func clientPublish(ignoringLimits: Bool = false) {
            let qos = pick([MQTTQoS.atMostOnce, .atLeastOnce, .exactlyOnce].filter { $0 <= configuration.maximumQoS })
            let topic = "in/\(int(0...3))"
            var identifier: UInt16?
            if qos != .atMostOnce {
                if version == .v5 && !ignoringLimits && clientFlows.count >= Int(configuration.receiveMaximum) {
                    return  // [MQTT-3.3.4-7]: a legal client waits
                }
                guard let free = freeClientIdentifier() else { return }
                identifier = free
                clientFlows[free] = ClientFlow(qos: qos, topic: topic)
            }
            // The alias mapping is the client's once the PUBLISH carrying it is sent.
            var properties = MQTTProperties()
            var topicName = topic
            if version == .v5 && configuration.topicAliasMaximum > 0 && chance(30) {
                let alias = UInt16(int(1...Int(configuration.topicAliasMaximum)))
                properties.append(.topicAlias(alias))
                if clientAliases[alias] == topic && chance(70) { topicName = "" }
                clientAliases[alias] = topic
            }
            clientSends(.publish(H.publish(topicName, qos: qos, id: identifier, properties: properties)), "PUBLISH QoS \(qos.rawValue) id \(identifier.map { "\($0)" } ?? "-") \(topic)")
        }

        /// A DUP resend of an unfinished PUBLISH (never after PUBREL, [MQTT-4.3.3-6]).
        mutating func resendInbound() {
            guard let (identifier, flow) = clientFlows.filter({ !$0.value.released && !$0.value.pubRecReceived }).sorted(by: { $0.key < $1.key }).first else { return }
            clientSends(.publish(H.publish(flow.topic, qos: flow.qos, id: identifier, dup: true)), "DUP PUBLISH id \(identifier)")
        }

        mutating func releaseInbound(_ statistics: inout Statistics) {
            guard let identifier = clientFlows.filter({ $0.value.pubRecReceived && !$0.value.released }).keys.sorted().first else { return }
            clientFlows[identifier]?.released = true
            let before = machine.state
            clientSends(.pubRel(PubAckPacket(packetIdentifier: identifier)), "PUBREL \(identifier)")
            if before == .connected && clientFlows[identifier] == nil { statistics.inboundQoS2Completed += 1 }
        }

        mutating func subscribeOrUnsubscribe() {
            guard let identifier = freeClientIdentifier() else { return }
            let filters = (0..<int(1...3)).map { _ in pick(["a/+", "a/#", "b", "$share/g/c", "d/e"]) }
            if chance(70) {
                clientSubscribes.insert(identifier)
                let subscriptions = filters.map { Subscription(topicFilter: $0, maximumQoS: pick([.atMostOnce, .atLeastOnce, .exactlyOnce])) }
                clientSends(.subscribe(SubscribePacket(packetIdentifier: identifier, subscriptions: subscriptions)), "SUBSCRIBE \(identifier)")
            } else {
                clientUnsubscribes.insert(identifier)
                clientSends(.unsubscribe(UnsubscribePacket(packetIdentifier: identifier, topicFilters: filters)), "UNSUBSCRIBE \(identifier)")
            }
        }

        // MARK: Store and gateway actions

        mutating func answerStore(_ statistics: inout Statistics) {
            guard !storeUnanswered.isEmpty else { return }
            let identifier = storeUnanswered.remove(at: int(0...(storeUnanswered.count - 1)))
            if chance(version == .v5 ? 10 : (legal ? 0 : 3)) {
                if version != .v5 { closeExpected = true }
                observe(machine.publishRefused(packetIdentifier: identifier, reasonCode: .quotaExceeded), "store refused \(identifier)")
            } else {
                statistics.inboundStored += 1
                observe(machine.publishStored(packetIdentifier: identifier), "store stored \(identifier)")
            }
        }

        mutating func completeSubscription() {
            if let (identifier, count) = gatewaySubscribes.sorted(by: { $0.key < $1.key }).first {
                gatewaySubscribes[identifier] = nil
                let codes = (0..<count).map { _ in pick([MQTTReasonCode.grantedQoS0, .grantedQoS1, .grantedQoS2, .notAuthorized]) }
                observe(machine.subscribeCompleted(packetIdentifier: identifier, reasonCodes: codes), "subscribe completed \(identifier)")
            } else if let (identifier, count) = gatewayUnsubscribes.sorted(by: { $0.key < $1.key }).first {
                gatewayUnsubscribes[identifier] = nil
                observe(machine.unsubscribeCompleted(packetIdentifier: identifier, reasonCodes: Array(repeating: .success, count: count)), "unsubscribe completed \(identifier)")
            }
        }

        mutating func deliver(_ statistics: inout Statistics) {
            let tag = Machine.DeliveryTag(nextTag)
            nextTag += 1
            let qos = pick([MQTTQoS.atMostOnce, .atLeastOnce, .exactlyOnce].filter { $0 <= configuration.maximumQoS })
            let publish = H.publish("out/\(int(0...3))", qos: qos, payload: String(repeating: "p", count: int(0...80)))
            unfinishedTags.insert(tag)
            offeredTag = tag
            offerAnswered = false
            let actions = machine.deliveryRequested(Machine.Delivery(tag: tag, publish: publish))
            observe(actions, "deliver \(tag) QoS \(qos.rawValue)")
            if !offerAnswered { fail("delivery \(tag) got no answer: \(actions)") }
            offeredTag = nil
            for action in actions {
                switch action {
                case .retryDeliveryLater: statistics.deliveriesDeferred += 1
                case .dropDelivery: statistics.deliveriesDropped += 1
                case .send(.publish): statistics.deliveriesSent += 1
                default: break
                }
            }
        }

        mutating func acknowledgeDelivery(_ statistics: inout Statistics) {
            let candidates = outstanding.filter { $0.value.sentHere }.keys.sorted()
            guard !candidates.isEmpty else { return }
            let identifier = pick(candidates)
            let delivery = outstanding[identifier]!
            let refuse = version == .v5 && chance(10)
            let code: MQTTReasonCode = refuse ? .unspecifiedError : .success
            switch (delivery.qos, delivery.released) {
            case (.atLeastOnce, _):
                outstanding[identifier] = nil
                clientSends(.pubAck(PubAckPacket(packetIdentifier: identifier, reasonCode: code)), "PUBACK \(identifier)")
                expectFinished(delivery.tag, &statistics)
            case (.exactlyOnce, false):
                if refuse { outstanding[identifier] = nil }
                clientSends(.pubRec(PubAckPacket(packetIdentifier: identifier, reasonCode: code)), "PUBREC \(identifier)")
                if refuse { expectFinished(delivery.tag, &statistics) }
            case (.exactlyOnce, true):
                outstanding[identifier] = nil
                clientSends(.pubComp(PubAckPacket(packetIdentifier: identifier)), "PUBCOMP \(identifier)")
                expectFinished(delivery.tag, &statistics)
            case (.atMostOnce, _):
                fail("QoS 0 delivery in flight")
            }
        }

        mutating func expectFinished(_ tag: Machine.DeliveryTag, _ statistics: inout Statistics) {
            if unfinishedTags.contains(tag) && !closed {
                fail("delivery \(tag) not acknowledged after its final acknowledgement")
            } else {
                statistics.deliveriesAcknowledged += 1
            }
        }

        /// Events after the close must do nothing (a delivery is only offered back).
        mutating func afterCloseEvent() {
            guard closed else { return }
            let tag = Machine.DeliveryTag(nextTag)
            nextTag += 1
            let results: [[Action]] = [
                machine.packetReceived(.pingReq, nowMillis: now),
                machine.timerFired(nowMillis: now + 1_000_000),
                machine.publishStored(packetIdentifier: 1),
                machine.subscribeCompleted(packetIdentifier: 1, reasonCodes: []),
                machine.sessionTakenOver(),
                machine.serverShuttingDown(),
                machine.decodeFailed(MQTTDecodeError(.truncated, packetType: nil, byteOffset: 0)),
            ]
            for actions in results where !actions.isEmpty {
                fail("actions after close: \(actions)")
            }
            if machine.deliveryRequested(Machine.Delivery(tag: tag, publish: H.publish(qos: .atLeastOnce))) != [.retryDeliveryLater(tag)] {
                fail("a closed machine took a delivery")
            }
            if machine.state != .closing && machine.state != .closed { fail("state \(machine.state) after close") }
        }

        // MARK: The invariants

        mutating func observe(_ actions: [Action], _ label: String) {
            trace.append("\(label) → \(actions.map { "\($0)".prefix(110) })")
            guard !failed else { return }
            let wasClosed = closed
            for (index, action) in actions.enumerated() {
                if wasClosed {
                    fail("\(label): action after close: \(action)")
                    return
                }
                if closed {
                    fail("\(label): action after close in the same list: \(action)")
                    return
                }
                switch action {
                case .configureEncoder(let protocolVersion, let maximum):
                    if connAckSent { fail("encoder configured after CONNACK") }
                    encoder = MQTTPacketEncoder(protocolVersion: protocolVersion, maxPacketSizeBytes: maximum)
                case .send(let packet):
                    observeSent(packet, label)
                case .close(let reason):
                    closed = true
                    if index != actions.count - 1 { fail("\(label): close is not the last action") }
                    if legal && !closeExpected { fail("\(label): a legal client was disconnected: \(reason)") }
                case .scheduleTimer(let at):
                    if at < now - 1 { fail("timer scheduled in the past: \(at) < \(now)") }
                case .authenticate:
                    break
                case .attachSession:
                    if attachRequested { fail("attachSession twice") }
                    attachRequested = true
                case .detachSession:
                    if !attachRequested { fail("\(label): detachSession without attachSession") }
                    detachCount += 1
                    if detachCount > 1 { fail("\(label): detachSession twice") }
                case .storePublish(let publish):
                    if !accepted { fail("\(label): PUBLISH processed before CONNACK [MQTT-3.1.4-6]") }
                    if publish.topicName.isEmpty || publish.properties.topicAlias != nil || publish.dup {
                        fail("\(label): stored PUBLISH not resolved: \(publish)")
                    }
                    if let identifier = publish.packetIdentifier, publish.qos != .atMostOnce {
                        if storeQueue.contains(where: { $0.identifier == identifier }) { fail("\(label): identifier \(identifier) stored twice") }
                        storeQueue.append((identifier, publish.qos))
                        storeUnanswered.append(identifier)
                    }
                case .releaseInboundPacketIdentifier(let identifier):
                    if !serverAwaitingPubRel.contains(identifier) { fail("\(label): released \(identifier), which awaits no PUBREL") }
                case .subscribe(let subscribe):
                    gatewaySubscribes[subscribe.packetIdentifier] = subscribe.subscriptions.count
                case .unsubscribe(let unsubscribe):
                    gatewayUnsubscribes[unsubscribe.packetIdentifier] = unsubscribe.topicFilters.count
                case .acknowledgeDelivery(let tag), .dropDelivery(let tag, _):
                    if unfinishedTags.remove(tag) == nil { fail("\(label): delivery \(tag) finished twice or never offered") }
                    if tag == offeredTag { offerAnswered = true }
                    // A dropped resend frees its identifier.
                    for (identifier, delivery) in outstanding where delivery.tag == tag {
                        outstanding[identifier] = nil
                    }
                case .retryDeliveryLater(let tag):
                    if tag != offeredTag { fail("\(label): retry for \(tag), which was not offered now") }
                    unfinishedTags.remove(tag)
                    offerAnswered = true
                case .recordDeliverySent(let tag, let identifier):
                    // Recorded right before the QoS 2 PUBLISH it is for, never for anything else.
                    let next = index + 1 < actions.count ? actions[index + 1] : nil
                    guard case .send(.publish(let publish))? = next, publish.packetIdentifier == identifier, publish.qos == .exactlyOnce, !publish.dup else {
                        fail("\(label): delivery \(tag) recorded as sent under \(identifier), but the next action is \(String(describing: next))")
                        break
                    }
                case .recordDeliveryReleased(let tag, let identifier):
                    if outstanding[identifier]?.tag != tag || outstanding[identifier]?.qos != .exactlyOnce {
                        fail("\(label): released \(tag) under \(identifier), which is not its QoS 2 delivery")
                    }
                }
            }
            if accepted && !closed && machine.state == .connected {
                let sentHere = outstanding.values.filter(\.sentHere).count
                if machine.inflightDeliveryCount != sentHere {
                    fail("\(label): machine has \(machine.inflightDeliveryCount) deliveries in flight, the client \(sentHere)")
                }
            }
        }

        mutating func observeSent(_ packet: MQTTPacket, _ label: String) {
            // [MQTT-3.1.2-24]: every packet fits the client's Maximum Packet Size.
            do {
                _ = try encoder.encodedSize(of: packet)
            } catch {
                fail("\(label): \(packet.type) cannot be sent: \(error)")
            }
            if !connAckSent {
                guard case .connAck(let connAck) = packet else {
                    fail("\(label): \(packet.type) before CONNACK [MQTT-3.2.0-1]")
                    return
                }
                connAckSent = true
                accepted = connAck.reasonCode == .success
                return
            }
            switch packet {
            case .connAck:
                fail("\(label): a second CONNACK [MQTT-3.2.0-2]")
            case .publish(let publish):
                guard publish.qos != .atMostOnce else { return }
                guard let identifier = publish.packetIdentifier, identifier != 0 else {
                    fail("\(label): QoS \(publish.qos.rawValue) PUBLISH without identifier")
                    return
                }
                if publish.dup {
                    guard var delivery = outstanding[identifier], !delivery.sentHere, !delivery.released else {
                        fail("\(label): DUP PUBLISH \(identifier) that is no pending resend [MQTT-4.4.0-1]")
                        return
                    }
                    delivery.sentHere = true
                    outstanding[identifier] = delivery
                } else {
                    guard outstanding[identifier] == nil else {
                        fail("\(label): identifier \(identifier) used while in flight [MQTT-2.2.1-4]")
                        return
                    }
                    guard let tag = offeredTag else {
                        fail("\(label): new PUBLISH outside a delivery")
                        return
                    }
                    outstanding[identifier] = Outbound(qos: publish.qos, released: false, tag: tag, sentHere: true)
                    offerAnswered = true
                }
                let inFlight = outstanding.values.filter(\.sentHere).count
                if inFlight > window { fail("\(label): \(inFlight) deliveries in flight, window \(window) [MQTT-3.3.4-9]") }
            case .pubRel(let pubRel):
                let identifier = pubRel.packetIdentifier
                if var delivery = outstanding[identifier], delivery.qos == .exactlyOnce {
                    if !delivery.sentHere {
                        // The resend of a released delivery.
                        guard delivery.released else { fail("\(label): PUBREL for \(identifier) before PUBREC"); return }
                        delivery.sentHere = true
                    }
                    delivery.released = true
                    outstanding[identifier] = delivery
                    let inFlight = outstanding.values.filter(\.sentHere).count
                    if inFlight > window { fail("\(label): \(inFlight) deliveries in flight, window \(window)") }
                } else if version == .v5 && pubRel.reasonCode != .packetIdentifierNotFound {
                    fail("\(label): PUBREL for \(identifier), which is not in flight")
                }
            case .pubAck(let ack), .pubRec(let ack):
                let identifier = ack.packetIdentifier
                let isPubRec: Bool
                if case .pubRec = packet { isPubRec = true } else { isPubRec = false }
                if let first = storeQueue.first, first.identifier == identifier {
                    storeQueue.removeFirst()
                    if (first.qos == .exactlyOnce) != isPubRec { fail("\(label): wrong acknowledgement kind for \(identifier)") }
                    if isPubRec && !ack.reasonCode.isFailure {
                        serverAwaitingPubRel.insert(identifier)
                        clientFlows[identifier]?.pubRecReceived = true
                    } else {
                        clientFlows[identifier] = nil
                    }
                } else if isPubRec && serverAwaitingPubRel.contains(identifier) {
                    // A repeated PUBREC for a resend ([MQTT-4.3.3-10]).
                } else {
                    fail("\(label): \(packet.type) \(identifier) out of arrival order (next: \(storeQueue.first.map { "\($0.identifier)" } ?? "none")) (§4.6)")
                }
            case .pubComp(let ack):
                let identifier = ack.packetIdentifier
                if serverAwaitingPubRel.remove(identifier) != nil {
                    clientFlows[identifier] = nil
                } else if version == .v5 && ack.reasonCode != .packetIdentifierNotFound {
                    fail("\(label): PUBCOMP Success for \(identifier), which awaited no PUBREL")
                }
            case .subAck(let subAck):
                if clientSubscribes.remove(subAck.packetIdentifier) == nil { fail("\(label): SUBACK for nothing") }
            case .unsubAck(let unsubAck):
                if clientUnsubscribes.remove(unsubAck.packetIdentifier) == nil { fail("\(label): UNSUBACK for nothing") }
            case .pingResp:
                break
            case .disconnect:
                if version != .v5 { fail("\(label): DISCONNECT to a \(version) client") }
            case .connect, .subscribe, .unsubscribe, .pingReq, .auth:
                fail("\(label): the server sent \(packet.type)")
            }
        }
    }
}
