"""Shared helpers of the paho-mqtt scenarios that NodePahoTests.swift runs against a real mqtt-node.

Every scenario script takes --host, --port, --version (3.1.1 or 5) and --prefix (unique per run, so
that parallel runs on one node never share a client identifier or a topic), drives the node, and
prints exactly one JSON object on standard output: what it observed. The Swift test asserts on it.
A scenario that cannot run at all (no CONNACK, a timeout it did not expect) exits 1 with a message
on standard error. Every wait here is bounded.

paho is driven by hand (`client.loop()`), never by its background thread: that thread reconnects
after a disconnect, which would hide what the node did (and fight a session takeover).
"""

import argparse
import json
import socket
import struct
import sys
import time

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

if int(paho.mqtt.__version__.split(".")[0]) < 2:
    sys.exit(f"paho-mqtt 2.x is required, found {paho.mqtt.__version__}")

# How long any single wait may take, in seconds. Generous: the machine running the tests is small
# and shared.
WAIT_SECONDS = 15.0


def arguments(configure=None):
    """Parses the common arguments, plus whatever `configure(parser)` adds."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", choices=["3.1.1", "5"], default="5")
    parser.add_argument("--prefix", required=True)
    if configure is not None:
        configure(parser)
    return parser.parse_args()


def emit(result):
    """Prints the observations and ends the scenario successfully."""
    sys.stdout.write(json.dumps(result, sort_keys=True, default=_json_default) + "\n")
    sys.stdout.flush()
    sys.exit(0)


def fail(message):
    """Ends the scenario: it could not run to the end."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    sys.exit(1)


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, ReasonCode):
        return value.value
    return str(value)


def properties_dict(properties):
    """A paho Properties object as a plain dictionary (CorrelationData as hex, UserProperty as pairs)."""
    if properties is None:
        return {}
    result = properties.json()
    if "UserProperty" in result:
        result["UserProperty"] = [list(pair) for pair in result["UserProperty"]]
    return result


def code_value(code):
    if code is None:
        return None
    if isinstance(code, ReasonCode):
        return code.value
    return int(code)


class Peer:
    """One paho client that records everything the node sends it."""

    def __init__(self, args, client_id, clean=True, manual_ack=False):
        self.args = args
        self.v5 = args.version == "5"
        self.clean = clean
        if self.v5:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                reconnect_on_failure=False, manual_ack=manual_ack,
            )
        else:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                clean_session=clean, reconnect_on_failure=False, manual_ack=manual_ack,
            )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.connack = None
        self.disconnects = []
        self.messages = []
        self.subacks = {}
        self.unsubacks = {}
        self.completed = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.on_publish = self._on_publish

    # paho callbacks ----------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = {
            "code": code_value(reason_code),
            "session_present": bool(flags.session_present),
            "properties": properties_dict(properties) if self.v5 else {},
        }

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnects.append({
            "code": code_value(reason_code),
            "properties": properties_dict(properties) if self.v5 else {},
            "at": time.monotonic(),
        })

    def _on_message(self, client, userdata, message):
        self.messages.append({
            "topic": message.topic,
            "payload": message.payload.decode("utf-8", "replace"),
            "qos": message.qos,
            "retain": bool(message.retain),
            "dup": bool(message.dup),
            "mid": message.mid,
            "properties": properties_dict(getattr(message, "properties", None)) if self.v5 else {},
        })

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subacks[mid] = [code_value(code) for code in reason_codes]

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        if isinstance(reason_codes, list):
            self.unsubacks[mid] = [code_value(code) for code in reason_codes]
        else:
            self.unsubacks[mid] = [code_value(reason_codes)]

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.completed[mid] = code_value(reason_code)

    # actions -----------------------------------------------------------------------------------

    def connect(self, keepalive=60, properties=None, will=None, username=None, password=None, expect_success=True):
        """Connects and waits for the CONNACK; returns it (a dict)."""
        if will is not None:
            self.client.will_set(**will)
        if username is not None or password is not None:
            self.client.username_pw_set(username, password)
        if self.v5:
            self.client.connect(
                self.args.host, self.args.port, keepalive=keepalive, clean_start=self.clean,
                properties=properties,
            )
        else:
            self.client.connect(self.args.host, self.args.port, keepalive=keepalive)
        pump([self], lambda: self.connack is not None or self.disconnects, what="CONNACK")
        if self.connack is None:
            fail(f"no CONNACK for {self.client._client_id!r}: {self.disconnects}")
        if expect_success and self.connack["code"] != 0:
            fail(f"CONNECT of {self.client._client_id!r} refused: {self.connack}")
        return self.connack

    def subscribe(self, topic, qos=1, options=None, properties=None, peers=()):
        """Subscribes and waits for the SUBACK; returns its reason codes."""
        if options is not None:
            result, mid = self.client.subscribe(topic, options=options, properties=properties)
        elif isinstance(topic, list):
            result, mid = self.client.subscribe(topic, properties=properties)
        else:
            result, mid = self.client.subscribe(topic, qos, properties=properties)
        if result != mqtt.MQTT_ERR_SUCCESS:
            fail(f"subscribe {topic!r} failed locally: {result}")
        pump([self, *peers], lambda: mid in self.subacks or bool(self.disconnects), what=f"SUBACK of {topic!r}")
        return self.subacks.get(mid)

    def unsubscribe(self, topic, peers=()):
        result, mid = self.client.unsubscribe(topic)
        if result != mqtt.MQTT_ERR_SUCCESS:
            fail(f"unsubscribe {topic!r} failed locally: {result}")
        pump([self, *peers], lambda: mid in self.unsubacks or bool(self.disconnects), what=f"UNSUBACK of {topic!r}")
        return self.unsubacks.get(mid)

    def publish(self, topic, payload, qos=0, retain=False, properties=None, peers=(), wait=True):
        """Publishes; for QoS 1 and 2 waits for the PUBACK / PUBCOMP. Returns the message id."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            fail(f"publish {topic!r} failed locally: {info.rc}")
        if wait:
            if qos == 0:
                pump([self, *peers], lambda: info.is_published(), what=f"QoS 0 publish of {topic!r} to be written")
            else:
                pump([self, *peers], lambda: info.mid in self.completed or bool(self.disconnects),
                     what=f"acknowledgement of QoS {qos} publish to {topic!r}")
        return info.mid

    def disconnect(self, reasoncode=None, properties=None, peers=()):
        """Sends DISCONNECT and waits until paho has closed the socket."""
        self.client.disconnect(reasoncode=reasoncode, properties=properties)
        pump([self, *peers], lambda: bool(self.disconnects), what="own DISCONNECT to be written")

    def drop(self):
        """Closes the TCP connection without DISCONNECT: an abnormal close for the node."""
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    @property
    def connected(self):
        return self.client.is_connected()

    def loop_once(self):
        if self.client.socket() is not None:
            self.client.loop(timeout=0.005)


def pump(peers, until, seconds=WAIT_SECONDS, what=None):
    """Runs the network loop of every peer until `until()` holds or `seconds` pass. Returns whether it holds.

    With `what`, not holding in time ends the scenario with a message."""
    deadline = time.monotonic() + seconds
    while True:
        if until():
            return True
        if time.monotonic() >= deadline:
            if what is not None:
                fail(f"timed out after {seconds} s waiting for {what}")
            return False
        for peer in peers:
            peer.loop_once()
        time.sleep(0.002)


def settle(peers, seconds):
    """Keeps the peers' loops running for `seconds` (to see that nothing more arrives)."""
    pump(peers, lambda: False, seconds=seconds)


def reason(identifier, packet_type=PacketTypes.DISCONNECT):
    return ReasonCode(packet_type, identifier=identifier)


def user_properties(packet_type, pairs):
    properties = Properties(packet_type)
    properties.UserProperty = pairs
    return properties


def sub_options(qos, no_local=False, retain_as_published=False, retain_handling=0):
    return SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=retain_as_published,
                            retainHandling=retain_handling)


# Raw MQTT over a socket, for what a well-behaved client library will not send ------------------


def varint(value):
    out = bytearray()
    while True:
        byte = value % 128
        value //= 128
        if value:
            byte |= 0x80
        out.append(byte)
        if not value:
            return bytes(out)


def utf8(text):
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return struct.pack("!H", len(data)) + data


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


# v5 property identifiers and how they are encoded.
PROPERTY_TYPES = {
    0x01: ("PayloadFormatIndicator", "byte"), 0x02: ("MessageExpiryInterval", "u32"),
    0x03: ("ContentType", "str"), 0x08: ("ResponseTopic", "str"), 0x09: ("CorrelationData", "bin"),
    0x0B: ("SubscriptionIdentifier", "varint"), 0x11: ("SessionExpiryInterval", "u32"),
    0x12: ("AssignedClientIdentifier", "str"), 0x13: ("ServerKeepAlive", "u16"),
    0x15: ("AuthenticationMethod", "str"), 0x16: ("AuthenticationData", "bin"),
    0x17: ("RequestProblemInformation", "byte"), 0x18: ("WillDelayInterval", "u32"),
    0x19: ("RequestResponseInformation", "byte"), 0x1A: ("ResponseInformation", "str"),
    0x1C: ("ServerReference", "str"), 0x1F: ("ReasonString", "str"), 0x21: ("ReceiveMaximum", "u16"),
    0x22: ("TopicAliasMaximum", "u16"), 0x23: ("TopicAlias", "u16"), 0x24: ("MaximumQoS", "byte"),
    0x25: ("RetainAvailable", "byte"), 0x26: ("UserProperty", "pair"), 0x27: ("MaximumPacketSize", "u32"),
    0x28: ("WildcardSubscriptionAvailable", "byte"), 0x29: ("SubscriptionIdentifierAvailable", "byte"),
    0x2A: ("SharedSubscriptionAvailable", "byte"),
}
PROPERTY_IDS = {name: (identifier, kind) for identifier, (name, kind) in PROPERTY_TYPES.items()}


def encode_properties(pairs):
    """[(name, value)] as a v5 property block with its length."""
    body = bytearray()
    for name, value in pairs:
        identifier, kind = PROPERTY_IDS[name]
        body += varint(identifier)
        if kind == "byte":
            body += bytes([value])
        elif kind == "u16":
            body += struct.pack("!H", value)
        elif kind == "u32":
            body += struct.pack("!I", value)
        elif kind == "varint":
            body += varint(value)
        elif kind in ("str", "bin"):
            body += utf8(value)
        elif kind == "pair":
            body += utf8(value[0]) + utf8(value[1])
    return varint(len(body)) + bytes(body)


def read_varint(data, offset):
    value, multiplier = 0, 1
    for _ in range(4):
        byte = data[offset]
        offset += 1
        value += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return value, offset
        multiplier *= 128
    raise ValueError("variable byte integer longer than 4 bytes")


def decode_properties(data, offset):
    """Decodes a v5 property block at `offset`; returns (dict, offset after it)."""
    length, offset = read_varint(data, offset)
    end = offset + length
    result = {}
    while offset < end:
        identifier, offset = read_varint(data, offset)
        name, kind = PROPERTY_TYPES.get(identifier, (f"0x{identifier:02x}", "bin"))
        if kind == "byte":
            value = data[offset]
            offset += 1
        elif kind == "u16":
            value = struct.unpack_from("!H", data, offset)[0]
            offset += 2
        elif kind == "u32":
            value = struct.unpack_from("!I", data, offset)[0]
            offset += 4
        elif kind == "varint":
            value, offset = read_varint(data, offset)
        elif kind in ("str", "bin"):
            size = struct.unpack_from("!H", data, offset)[0]
            raw = bytes(data[offset + 2:offset + 2 + size])
            value = raw.decode("utf-8", "replace") if kind == "str" else raw.hex()
            offset += 2 + size
        else:
            key_size = struct.unpack_from("!H", data, offset)[0]
            key = bytes(data[offset + 2:offset + 2 + key_size]).decode()
            offset += 2 + key_size
            value_size = struct.unpack_from("!H", data, offset)[0]
            text = bytes(data[offset + 2:offset + 2 + value_size]).decode()
            offset += 2 + value_size
            value = [key, text]
        if kind in ("pair", "varint") and name in ("UserProperty", "SubscriptionIdentifier"):
            result.setdefault(name, []).append(value)
        else:
            result[name] = value
    return result, offset


def connect_packet(client_id, level=4, clean=True, keepalive=60, properties=(), will=None,
                   username=None, password=None, protocol_name="MQTT"):
    """A CONNECT: level 4 is 3.1.1, 5 is 5.0. `will` is (topic, payload, qos, retain, will_properties)."""
    v5 = level == 5
    flags = 0x02 if clean else 0
    payload = utf8(client_id)
    if will is not None:
        topic, will_payload, will_qos, will_retain, will_properties = will
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        if v5:
            payload += encode_properties(will_properties)
        payload += utf8(topic) + utf8(will_payload)
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
    if password is not None:
        flags |= 0x40
        payload += utf8(password)
    variable = utf8(protocol_name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if v5:
        variable += encode_properties(properties)
    return packet(0x10, variable + payload)


def publish_packet(topic, payload, qos=0, packet_id=1, retain=False, v5=False, properties=(), dup=False):
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = utf8(topic)
    if qos > 0:
        body += struct.pack("!H", packet_id)
    if v5:
        body += encode_properties(properties)
    return packet(first, body + (payload.encode() if isinstance(payload, str) else payload))


def subscribe_packet(packet_id, filters, v5=False, properties=()):
    """`filters` is [(filter, options byte)]."""
    body = struct.pack("!H", packet_id)
    if v5:
        body += encode_properties(properties)
    for topic_filter, options in filters:
        body += utf8(topic_filter) + bytes([options])
    return packet(0x82, body)


def ack_packet(kind, packet_id):
    """PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) with reason Success."""
    return packet(kind, struct.pack("!H", packet_id))


PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
                8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
                14: "DISCONNECT", 15: "AUTH"}


class Closed(Exception):
    """The node closed the connection."""


class Raw:
    """MQTT bytes over a plain socket."""

    def __init__(self, args, v5=None):
        self.v5 = (args.version == "5") if v5 is None else v5
        self.sock = socket.create_connection((args.host, args.port), timeout=WAIT_SECONDS)
        self.buffer = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError
        except ConnectionResetError:
            raise Closed
        if not chunk:
            raise Closed
        self.buffer += chunk

    def read(self, seconds=WAIT_SECONDS):
        """The next packet as (type name, flags, body bytes). Raises Closed or TimeoutError."""
        deadline = time.monotonic() + seconds
        while True:
            if len(self.buffer) >= 2:
                try:
                    length, offset = read_varint(self.buffer, 1)
                except IndexError:
                    length = None
                if length is not None and len(self.buffer) >= offset + length:
                    first = self.buffer[0]
                    body = bytes(self.buffer[offset:offset + length])
                    del self.buffer[:offset + length]
                    return PACKET_NAMES.get(first >> 4, str(first >> 4)), first & 0x0F, body
            self._fill(deadline)

    def read_until_closed(self, seconds=WAIT_SECONDS):
        """Every packet until the node closes the connection; None if it is still open at the deadline."""
        packets = []
        deadline = time.monotonic() + seconds
        while True:
            try:
                packets.append(self.read(max(0.0, deadline - time.monotonic())))
            except Closed:
                return packets
            except TimeoutError:
                return None

    def is_closed_within(self, seconds):
        return self.read_until_closed(seconds) is not None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def decode_connack(body, v5):
    result = {"session_present": bool(body[0] & 0x01), "code": body[1]}
    if v5 and len(body) > 2:
        result["properties"], _ = decode_properties(body, 2)
    else:
        result["properties"] = {}
    return result


def decode_disconnect(body):
    """A v5 DISCONNECT body: reason code (0 when absent) and properties."""
    if not body:
        return {"code": 0, "properties": {}}
    properties = decode_properties(body, 1)[0] if len(body) > 1 else {}
    return {"code": body[0], "properties": properties}


def decode_publish(flags, body, v5):
    qos = (flags >> 1) & 0x03
    size = struct.unpack_from("!H", body, 0)[0]
    topic = body[2:2 + size].decode()
    offset = 2 + size
    packet_id = None
    if qos > 0:
        packet_id = struct.unpack_from("!H", body, offset)[0]
        offset += 2
    properties = {}
    if v5:
        properties, offset = decode_properties(body, offset)
    return {"topic": topic, "qos": qos, "retain": bool(flags & 0x01), "dup": bool(flags & 0x08),
            "packet_id": packet_id, "properties": properties, "payload": body[offset:].decode("utf-8", "replace")}


def raw_connect(args, client_id, level=None, **options):
    """A Raw connection that sent CONNECT and got CONNACK; returns (raw, connack dict)."""
    level = level if level is not None else (5 if args.version == "5" else 4)
    raw = Raw(args, v5=(level == 5))
    raw.send(connect_packet(client_id, level=level, **options))
    try:
        name, _, body = raw.read()
    except (Closed, TimeoutError) as error:
        fail(f"no CONNACK for {client_id!r}: {type(error).__name__}")
    if name != "CONNACK":
        fail(f"expected CONNACK, got {name}")
    return raw, decode_connack(body, level == 5)
