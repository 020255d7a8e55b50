"""MQTT over WebSocket with hand-made frames (NodeTransportTests.swift): the upgrade on /mqtt with
subprotocol mqtt, a CONNECT split over a fragmented message (binary frame + continuation frame),
SUBSCRIBE and PUBLISH in one frame, a ping, then a close. Also asks for a wrong path and for a
subprotocol that is not MQTT's. --version picks the MQTT protocol level of CONNECT (4 or 5).

Prints {"status": int, "subprotocol": str, "packets": [hex bodies by type], "pong": hex, "close": int,
"wrong_path_status": int, "wrong_subprotocol_status": int}.
"""

import base64
import os
import socket
import struct
import time

from nodetest import WAIT_SECONDS, arguments, connect_packet, emit, fail, publish_packet, subscribe_packet

args = arguments(lambda parser: parser.add_argument("--transport-port", type=int, required=True))
v5 = args.version == "5"


def upgrade(path, protocol):
    sock = socket.create_connection((args.host, args.transport_port), timeout=WAIT_SECONDS)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {args.host}:{args.transport_port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            break
        response += chunk
    head, _, rest = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return sock, status, headers, rest


def frame(opcode, payload, fin=True):
    """A client frame: masked, as RFC 6455 5.3 requires."""
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Reader:
    def __init__(self, sock, initial):
        self.sock = sock
        self.buffer = bytearray(initial)

    def need(self, count):
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.buffer) < count:
            if time.monotonic() > deadline:
                fail("timed out reading from the node")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def take(self, count):
        self.need(count)
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def frame(self):
        first, second = self.take(2)
        if second & 0x80:
            fail("the server masked a frame (RFC 6455 5.1 forbids it)")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.take(8))
        return first & 0x0F, self.take(length)


sock, status, headers, rest = upgrade("/mqtt", "mqtt")
if status != 101:
    fail(f"upgrade refused: {status} {headers}")
reader = Reader(sock, rest)
level = 5 if v5 else 4
connect = connect_packet(f"{args.prefix}-raw", level=level)
middle = len(connect) // 2
# One CONNECT in a fragmented message: a binary frame without FIN, then a continuation frame.
sock.sendall(frame(0x2, connect[:middle], fin=False) + frame(0x0, connect[middle:]))
topic = f"{args.prefix}/raw"
# SUBSCRIBE and PUBLISH (QoS 1) in one binary frame.
both = subscribe_packet(1, [(topic, 1)], v5=v5) + publish_packet(topic, b"over-websocket", qos=1, packet_id=2, v5=v5)
sock.sendall(frame(0x2, both))
stream = bytearray()
packets = []
deadline = time.monotonic() + WAIT_SECONDS
# CONNACK, SUBACK, PUBACK and the PUBLISH back (PUBACK and PUBLISH in either order).
while len(packets) < 4 and time.monotonic() < deadline:
    opcode, payload = reader.frame()
    if opcode != 0x2:
        fail(f"expected binary frames, got opcode {opcode}")
    stream += payload
    while len(stream) >= 2:
        multiplier, length, index = 1, 0, 1
        while True:
            byte = stream[index]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            index += 1
            if not byte & 0x80:
                break
        if len(stream) < index + length:
            break
        packets.append({"type": stream[0] >> 4, "body": bytes(stream[index:index + length]).hex()})
        del stream[:index + length]
ping_payload = b"are-you-there"
sock.sendall(frame(0x9, ping_payload))
opcode, payload = reader.frame()
pong = payload.hex() if opcode == 0xA else f"opcode {opcode}"
sock.sendall(frame(0x8, struct.pack("!H", 1000)))
opcode, payload = reader.frame()
close_code = struct.unpack("!H", payload[:2])[0] if opcode == 0x8 and len(payload) >= 2 else -1
closed = False
try:
    reader.need(len(reader.buffer) + 1)
except EOFError:
    closed = True
sock.close()

wrong_path, wrong_path_status, _, _ = upgrade("/other", "mqtt")
wrong_path.close()
wrong_protocol, wrong_protocol_status, _, _ = upgrade("/mqtt", "chat")
wrong_protocol.close()
emit({
    "status": status,
    "subprotocol": headers.get("sec-websocket-protocol"),
    "packets": packets,
    "pong": pong,
    "ping": ping_payload.hex(),
    "close": close_code,
    "closed": closed,
    "wrong_path_status": wrong_path_status,
    "wrong_subprotocol_status": wrong_protocol_status,
})
