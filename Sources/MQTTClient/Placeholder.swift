// The client library; see MQTTClient.swift.
