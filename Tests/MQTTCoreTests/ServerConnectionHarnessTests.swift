import MQTTCore
import NIOCore
import Testing

/// Helpers shared by the `ServerConnection*Tests` suites, which drive `ServerConnectionStateMachine` with
/// events and check its actions: no channel, no clock, no store.
enum ServerHarness {
    typealias Machine = ServerConnectionStateMachine
    typealias Action = ServerConnectionStateMachine.Action

    /// The time the connection opens, in ms.
    static let t0: Int64 = 1_000_000

    static func connect(
        _ version: MQTTProtocolVersion = .v3_1_1,
        clientIdentifier: String = "client-1",
        cleanStart: Bool = true,
        keepAliveSeconds: UInt16 = 60,
        will: ConnectPacket.Will? = nil,
        properties: MQTTProperties = []
    ) -> ConnectPacket {
        ConnectPacket(
            protocolVersion: version, clientIdentifier: clientIdentifier, cleanStart: cleanStart,
            keepAliveSeconds: keepAliveSeconds, will: will, properties: properties
        )
    }

    static func will(topic: String = "last/will", qos: MQTTQoS = .atMostOnce, retain: Bool = false) -> ConnectPacket.Will {
        ConnectPacket.Will(topicName: topic, payload: ByteBuffer(string: "gone"), qos: qos, retain: retain)
    }

    static func publish(
        _ topic: String = "a/b", qos: MQTTQoS = .atMostOnce, id: UInt16? = nil, payload: String = "hello",
        retain: Bool = false, dup: Bool = false, properties: MQTTProperties = []
    ) -> PublishPacket {
        PublishPacket(
            topicName: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, dup: dup,
            packetIdentifier: qos == .atMostOnce ? nil : (id ?? 1), properties: properties
        )
    }

    /// A machine that received `connect` and is waiting for authentication.
    static func authenticating(_ configuration: Machine.Configuration = .init(), _ connect: ConnectPacket) -> Machine {
        var machine = Machine(configuration: configuration, connectionIdentifier: "conn-7")
        _ = machine.connectionOpened(nowMillis: t0)
        let actions = machine.packetReceived(.connect(connect), nowMillis: t0)
        precondition(actions.contains(.authenticate(connect)), "CONNECT refused: \(actions)")
        return machine
    }

    /// A machine through CONNECT → allowed → attached, and the actions of `sessionAttached`.
    static func connected(
        _ configuration: Machine.Configuration = .init(),
        _ connect: ConnectPacket = connect(),
        sessionPresent: Bool = false,
        resumption: Machine.SessionResumption = .init(),
        nowMillis: Int64 = t0
    ) -> (machine: Machine, actions: [Action]) {
        var machine = authenticating(configuration, connect)
        _ = machine.authenticationCompleted(.allowed)
        let actions = machine.sessionAttached(sessionPresent: sessionPresent, resumption: resumption, nowMillis: nowMillis)
        precondition(machine.state == .connected, "not connected: \(actions)")
        return (machine, actions)
    }

    static func sent(_ actions: [Action]) -> [MQTTPacket] {
        actions.compactMap { if case .send(let packet) = $0 { packet } else { nil } }
    }

    static func closeReason(_ actions: [Action]) -> Machine.CloseReason? {
        actions.lazy.compactMap { if case .close(let reason) = $0 { reason } else { nil } }.first
    }

    static func detachment(_ actions: [Action]) -> Machine.SessionDetachment? {
        actions.lazy.compactMap { if case .detachSession(let detachment) = $0 { detachment } else { nil } }.first
    }

    static func connAck(_ actions: [Action]) -> ConnAckPacket? {
        sent(actions).lazy.compactMap { if case .connAck(let connAck) = $0 { connAck } else { nil } }.first
    }

    static func disconnect(_ actions: [Action]) -> DisconnectPacket? {
        sent(actions).lazy.compactMap { if case .disconnect(let disconnect) = $0 { disconnect } else { nil } }.first
    }

    static func publishes(_ actions: [Action]) -> [PublishPacket] {
        sent(actions).compactMap { if case .publish(let publish) = $0 { publish } else { nil } }
    }

    static func stored(_ actions: [Action]) -> [PublishPacket] {
        actions.compactMap { if case .storePublish(let publish) = $0 { publish } else { nil } }
    }

    /// Checks the machine closed with `code` for `kind`; for v5 a DISCONNECT with `code` is sent first.
    static func expectViolation(
        _ actions: [Action], _ code: MQTTReasonCode, kind: Machine.CloseReason.Kind = .protocolViolation,
        version: MQTTProtocolVersion, rule: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let reason = closeReason(actions)
        #expect(reason?.kind == kind, sourceLocation: sourceLocation)
        #expect(reason?.reasonCode == code, sourceLocation: sourceLocation)
        if let rule {
            #expect(reason?.specRule == rule, sourceLocation: sourceLocation)
        }
        if version == .v5 {
            #expect(disconnect(actions)?.reasonCode == code, sourceLocation: sourceLocation)
        } else {
            #expect(disconnect(actions) == nil, sourceLocation: sourceLocation)
        }
        if case .close = actions.last {} else {
            Issue.record("close is not the last action: \(actions)", sourceLocation: sourceLocation)
        }
    }

    /// A v5 CONNACK stripped of its Reason String, for comparing codes and properties.
    static func withoutReasonString(_ connAck: ConnAckPacket?) -> ConnAckPacket? {
        guard var connAck else { return nil }
        connAck.properties = MQTTProperties(connAck.properties.filter { $0.identifier != .reasonString })
        return connAck
    }
}
