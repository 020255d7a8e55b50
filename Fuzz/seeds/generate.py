#!/usr/bin/env python3
"""Writes the fuzzer's seed corpus as hex files next to this script.

The packets are built here from the MQTT 3.1.1 and 5.0 specifications, independently of the Swift
codec, so a seed that the decoder rejects points at a disagreement worth a look. Every seed is a byte
stream as a peer would send it, usually several packets long. Regenerate with

    python3 Fuzz/seeds/generate.py

and check that every seed still decodes completely (see docs/fuzzing.md).
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


# --- wire primitives (MQTT 5.0 §1.5) -------------------------------------------------------------

def vbi(value):
    """Variable byte integer, minimum number of bytes."""
    out = bytearray()
    while True:
        byte = value % 128
        value //= 128
        if value:
            byte |= 0x80
        out.append(byte)
        if not value:
            return bytes(out)


def u8(value):
    return struct.pack(">B", value)


def u16(value):
    return struct.pack(">H", value)


def u32(value):
    return struct.pack(">I", value)


def string(text):
    data = text.encode("utf-8")
    return u16(len(data)) + data


def binary(data):
    return u16(len(data)) + data


def packet(packet_type, flags, body):
    return u8(packet_type << 4 | flags) + vbi(len(body)) + body


def properties(*encoded):
    block = b"".join(encoded)
    return vbi(len(block)) + block


# Property encoders (MQTT 5.0 §2.2.2.2), named after the property.
def payload_format_indicator(v): return u8(0x01) + u8(v)
def message_expiry_interval(v): return u8(0x02) + u32(v)
def content_type(v): return u8(0x03) + string(v)
def response_topic(v): return u8(0x08) + string(v)
def correlation_data(v): return u8(0x09) + binary(v)
def subscription_identifier(v): return u8(0x0B) + vbi(v)
def session_expiry_interval(v): return u8(0x11) + u32(v)
def assigned_client_identifier(v): return u8(0x12) + string(v)
def server_keep_alive(v): return u8(0x13) + u16(v)
def authentication_method(v): return u8(0x15) + string(v)
def authentication_data(v): return u8(0x16) + binary(v)
def request_problem_information(v): return u8(0x17) + u8(v)
def will_delay_interval(v): return u8(0x18) + u32(v)
def request_response_information(v): return u8(0x19) + u8(v)
def response_information(v): return u8(0x1A) + string(v)
def server_reference(v): return u8(0x1C) + string(v)
def reason_string(v): return u8(0x1F) + string(v)
def receive_maximum(v): return u8(0x21) + u16(v)
def topic_alias_maximum(v): return u8(0x22) + u16(v)
def topic_alias(v): return u8(0x23) + u16(v)
def maximum_qos(v): return u8(0x24) + u8(v)
def retain_available(v): return u8(0x25) + u8(v)
def user_property(k, v): return u8(0x26) + string(k) + string(v)
def maximum_packet_size(v): return u8(0x27) + u32(v)
def wildcard_subscription_available(v): return u8(0x28) + u8(v)
def subscription_identifier_available(v): return u8(0x29) + u8(v)
def shared_subscription_available(v): return u8(0x2A) + u8(v)


# --- packets -------------------------------------------------------------------------------------

def connect(level, client_id, *, name="MQTT", clean=True, keep_alive=60, props=None, will=None,
            username=None, password=None):
    flags = 0
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | will["qos"] << 3 | (0x20 if will.get("retain") else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    body = string(name) + u8(level) + u8(flags) + u16(keep_alive)
    if level == 5:
        body += props if props is not None else properties()
    body += string(client_id)
    if will is not None:
        if level == 5:
            body += will.get("props", properties())
        body += string(will["topic"]) + binary(will["payload"])
    if username is not None:
        body += string(username)
    if password is not None:
        body += binary(password)
    return packet(1, 0, body)


def connack(session_present, code, props=None):
    return packet(2, 0, u8(1 if session_present else 0) + u8(code) + (props if props is not None else b""))


def publish(topic, payload, *, qos=0, packet_id=None, retain=False, dup=False, props=None):
    flags = qos << 1 | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = string(topic)
    if qos:
        body += u16(packet_id)
    if props is not None:
        body += props
    return packet(3, flags, body + payload)


def ack(packet_type, packet_id, code=None, props=None):
    flags = 0x02 if packet_type == 6 else 0
    body = u16(packet_id)
    if code is not None:
        body += u8(code)
        if props is not None:
            body += props
    return packet(packet_type, flags, body)


def subscribe(packet_id, filters, props=None):
    body = u16(packet_id) + (props if props is not None else b"")
    for topic_filter, options in filters:
        body += string(topic_filter) + u8(options)
    return packet(8, 0x02, body)


def suback(packet_id, codes, props=None):
    return packet(9, 0, u16(packet_id) + (props if props is not None else b"") + bytes(codes))


def unsubscribe(packet_id, filters, props=None):
    body = u16(packet_id) + (props if props is not None else b"")
    for topic_filter in filters:
        body += string(topic_filter)
    return packet(10, 0x02, body)


def unsuback(packet_id, codes=None, props=None):
    body = u16(packet_id)
    if codes is not None:
        body += props + bytes(codes)
    return packet(11, 0, body)


PINGREQ = packet(12, 0, b"")
PINGRESP = packet(13, 0, b"")


def disconnect(code=None, props=None):
    if code is None:
        return packet(14, 0, b"")
    return packet(14, 0, u8(code) + (props if props is not None else b""))


def auth(code, props):
    return packet(15, 0, u8(code) + props)


# --- seeds ---------------------------------------------------------------------------------------

PAYLOAD_64 = bytes(range(64))
PAYLOAD_TEXT = "température 21.5 °C".encode("utf-8")

SEEDS = {
    # A 3.1.1 client's side of a whole session (decoded by the server-side decoder, version nil).
    "v311-client-session": b"".join([
        connect(4, "sensor-17", clean=False, keep_alive=30, username="user", password=b"p\x00ss",
                will={"topic": "status/sensor-17", "payload": b"offline", "qos": 1, "retain": True}),
        subscribe(1, [("cmd/sensor-17/#", 1), ("+/broadcast", 0), ("$share/g/jobs/+", 2)]),
        publish("bench/t", PAYLOAD_64),
        publish("sensors/17/temperature", PAYLOAD_TEXT, qos=1, packet_id=2, retain=True),
        publish("sensors/17/humidity", b"40", qos=2, packet_id=3, dup=True),
        ack(4, 10),
        ack(5, 11),
        ack(6, 12),
        ack(7, 13),
        unsubscribe(4, ["+/broadcast", "cmd/sensor-17/#"]),
        PINGREQ,
        disconnect(),
    ]),
    # What a 3.1.1 server sends (decoded by the 3.1.1 client-side decoder).
    "v311-server-stream": b"".join([
        connack(True, 0),
        suback(1, [0x01, 0x00, 0x80]),
        publish("cmd/sensor-17/reset", b"now", qos=1, packet_id=7),
        ack(6, 3),
        ack(7, 3),
        unsuback(4),
        PINGRESP,
    ]),
    "v311-connack-refused": connack(False, 5),
    # MQTT 3.1: protocol name MQIsdp, level 3.
    "v31-client-session": b"".join([
        connect(3, "legacy-client", name="MQIsdp", username="u", password=b"pw"),
        publish("legacy/topic", b"hello", qos=1, packet_id=1),
        PINGREQ,
        disconnect(),
    ]),
    # A 5.0 client's side of a session, with every property a client may send.
    "v5-client-session": b"".join([
        connect(5, "", keep_alive=0, username="user", password=b"\x01\x02\x03",
                props=properties(session_expiry_interval(3600), receive_maximum(20),
                                 maximum_packet_size(65536), topic_alias_maximum(10),
                                 request_response_information(1), request_problem_information(0),
                                 user_property("region", "eu-west"), authentication_method("SCRAM-SHA-1"),
                                 authentication_data(b"client-first")),
                will={"topic": "clients/last-will", "payload": b"\x00\x01", "qos": 2, "retain": False,
                      "props": properties(will_delay_interval(5), payload_format_indicator(0),
                                          message_expiry_interval(60), content_type("application/octet-stream"),
                                          response_topic("clients/replies"), correlation_data(b"\xca\xfe"),
                                          user_property("k", "v"))}),
        auth(0x18, properties(authentication_method("SCRAM-SHA-1"), authentication_data(b"client-final"))),
        subscribe(1, [("a/+/c", 0x01 | 0x04 | 0x08 | 0x10), ("$share/workers/jobs/#", 0x02 | 0x20), ("#", 0)],
                  props=properties(subscription_identifier(268435455), user_property("x", "y"))),
        publish("bench/t", PAYLOAD_64, props=properties()),
        publish("sensors/17/temperature", PAYLOAD_TEXT, qos=1, packet_id=2,
                props=properties(payload_format_indicator(1), message_expiry_interval(30), topic_alias(1),
                                 response_topic("replies/17"), correlation_data(b"req-1"),
                                 user_property("unit", "°C"), user_property("unit", "K"),
                                 content_type("text/plain; charset=utf-8"))),
        publish("", b"aliased", qos=2, packet_id=3, props=properties(topic_alias(1))),
        ack(4, 10),
        ack(4, 11, 0x10, properties(reason_string("no matching subscribers"))),
        ack(5, 12, 0x00, properties()),
        ack(6, 12, 0x92),
        ack(7, 12, 0x00, properties(user_property("trace", "abc"))),
        unsubscribe(5, ["a/+/c", "#"], props=properties(user_property("why", "done"))),
        PINGREQ,
        disconnect(0x04, properties(session_expiry_interval(0), reason_string("bye"))),
    ]),
    # What a 5.0 server sends (decoded by the 5.0 client-side decoder).
    "v5-server-stream": b"".join([
        connack(False, 0x00, properties(session_expiry_interval(120), receive_maximum(100), maximum_qos(1),
                                        retain_available(1), maximum_packet_size(1048576),
                                        assigned_client_identifier("auto-4f2a"), topic_alias_maximum(16),
                                        reason_string("welcome"), user_property("node", "gw-1"),
                                        wildcard_subscription_available(1),
                                        subscription_identifier_available(1), shared_subscription_available(0),
                                        server_keep_alive(45), response_information("resp/auto-4f2a"),
                                        server_reference("other-host:1883"), authentication_method("SCRAM-SHA-1"),
                                        authentication_data(b"server-final"))),
        suback(1, [0x01, 0x02, 0x00, 0x80, 0x87, 0x9E], properties(reason_string("partial"))),
        publish("a/b/c", b"\x00" * 16, qos=1, packet_id=9,
                props=properties(subscription_identifier(1), subscription_identifier(300), topic_alias(2))),
        unsuback(5, [0x00, 0x11], properties()),
        auth(0x19, properties(authentication_method("SCRAM-SHA-1"))),
        PINGRESP,
        disconnect(0x9C, properties(server_reference("other-host:1883"), reason_string("use another server"))),
    ]),
    "v5-connack-refused": connack(False, 0x87, properties(reason_string("not authorized"))),
    "v5-publish-1k-qos1": publish("bench/t", bytes(i % 251 for i in range(1024)), qos=1, packet_id=1,
                                  props=properties()),
    "v311-publish-1k-qos1": publish("bench/t", bytes(i % 251 for i in range(1024)), qos=1, packet_id=1),
    # A remaining length of two bytes, then the rest of the stream.
    "v311-publish-200-then-ping": publish("x/y", b"z" * 200) + PINGREQ,
}


def main():
    for name, data in SEEDS.items():
        with open(os.path.join(HERE, name + ".hex"), "w") as f:
            f.write(data.hex() + "\n")
    print(f"wrote {len(SEEDS)} seeds to {HERE}")


if __name__ == "__main__":
    main()
