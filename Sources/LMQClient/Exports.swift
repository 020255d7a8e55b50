// What an application needs to call the library without importing more: QoS, properties, topic names
// and filters (MQTTCore), ByteBuffer (NIOCore).
@_exported import struct NIOCore.ByteBuffer
@_exported import MQTTCore
