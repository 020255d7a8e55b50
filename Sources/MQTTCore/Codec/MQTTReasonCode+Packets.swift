extension MQTTReasonCode {
    /// Whether a 5.0 packet of `type` may carry this reason code.
    public func isValid(in type: MQTTPacketType) -> Bool {
        switch type {
        case .connAck: return Self.connAckCodes.contains(self)
        case .pubAck, .pubRec: return Self.pubAckCodes.contains(self)
        case .pubRel, .pubComp: return self == .success || self == .packetIdentifierNotFound
        case .subAck: return Self.subAckCodes.contains(self)
        case .unsubAck: return Self.unsubAckCodes.contains(self)
        case .disconnect: return Self.disconnectCodes.contains(self)
        case .auth: return self == .success || self == .continueAuthentication || self == .reAuthenticate
        case .connect, .publish, .subscribe, .unsubscribe, .pingReq, .pingResp: return false
        }
    }

    /// 3.1.1 SUBACK return codes are 0x00, 0x01, 0x02 and 0x80 only (§3.9.3 of 3.1.1).
    public var isValidSubAckReturnCodeV3: Bool {
        self == .success || self == .grantedQoS1 || self == .grantedQoS2 || self == .unspecifiedError
    }

    /// §3.2.2.2, table 3-1.
    static let connAckCodes: Set<MQTTReasonCode> = [
        .success, .unspecifiedError, .malformedPacket, .protocolError, .implementationSpecificError,
        .unsupportedProtocolVersion, .clientIdentifierNotValid, .badUserNameOrPassword, .notAuthorized,
        .serverUnavailable, .serverBusy, .banned, .badAuthenticationMethod, .topicNameInvalid, .packetTooLarge,
        .quotaExceeded, .payloadFormatInvalid, .retainNotSupported, .qosNotSupported, .useAnotherServer,
        .serverMoved, .connectionRateExceeded,
    ]

    /// §3.4.2.1 (PUBACK) and §3.5.2.1 (PUBREC), tables 3-4 and 3-5.
    static let pubAckCodes: Set<MQTTReasonCode> = [
        .success, .noMatchingSubscribers, .unspecifiedError, .implementationSpecificError, .notAuthorized,
        .topicNameInvalid, .packetIdentifierInUse, .quotaExceeded, .payloadFormatInvalid,
    ]

    /// §3.9.3, table 3-8.
    static let subAckCodes: Set<MQTTReasonCode> = [
        .success, .grantedQoS1, .grantedQoS2, .unspecifiedError, .implementationSpecificError, .notAuthorized,
        .topicFilterInvalid, .packetIdentifierInUse, .quotaExceeded, .sharedSubscriptionsNotSupported,
        .subscriptionIdentifiersNotSupported, .wildcardSubscriptionsNotSupported,
    ]

    /// §3.11.3, table 3-9.
    static let unsubAckCodes: Set<MQTTReasonCode> = [
        .success, .noSubscriptionExisted, .unspecifiedError, .implementationSpecificError, .notAuthorized,
        .topicFilterInvalid, .packetIdentifierInUse,
    ]

    /// §3.14.2.1, table 3-10.
    static let disconnectCodes: Set<MQTTReasonCode> = [
        .success, .disconnectWithWillMessage, .unspecifiedError, .malformedPacket, .protocolError,
        .implementationSpecificError, .notAuthorized, .serverBusy, .serverShuttingDown, .keepAliveTimeout,
        .sessionTakenOver, .topicFilterInvalid, .topicNameInvalid, .receiveMaximumExceeded, .topicAliasInvalid,
        .packetTooLarge, .messageRateTooHigh, .quotaExceeded, .administrativeAction, .payloadFormatInvalid,
        .retainNotSupported, .qosNotSupported, .useAnotherServer, .serverMoved, .sharedSubscriptionsNotSupported,
        .connectionRateExceeded, .maximumConnectTime, .subscriptionIdentifiersNotSupported,
        .wildcardSubscriptionsNotSupported,
    ]
}
