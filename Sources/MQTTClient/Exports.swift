// The packet types in MQTTClient's API (ConnAckPacket, Subscription, MQTTQoS, MQTTReasonCode,
// MQTTProperties, ...) come from MQTTCore: one `import MQTTClient` makes them all available.
@_exported import MQTTCore
