#!/usr/bin/env python3
"""Capture golden MQTT byte streams from a real broker and its real clients.

Starts mosquitto on free loopback ports, puts a recording TCP relay in front of it, runs scenarios
with mosquitto_pub / mosquitto_sub (and, for MQTT 5.0 features those tools cannot send, a small
hand-built client), splits each direction of each connection into whole MQTT packets by their framing
(fixed header byte + variable byte integer remaining length, never by recv() boundaries), and writes
one JSON file per scenario to Tests/MQTTCoreTests/Fixtures/mosquitto/.

Usage:
    scripts/capture-fixtures.py               # capture every scenario
    scripts/capture-fixtures.py --list        # list scenario names
    scripts/capture-fixtures.py --only NAME   # capture one scenario (repeatable)
    scripts/capture-fixtures.py --out DIR     # write somewhere else
    scripts/capture-fixtures.py --spec        # (re)write Fixtures/spec/ from the specification examples

Needs: mosquitto, mosquitto_pub, mosquitto_sub, mosquitto_passwd (Debian: apt-get install mosquitto
mosquitto-clients). Python 3.8+, standard library only.
"""

import argparse
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "Tests", "MQTTCoreTests", "Fixtures")
DEFAULT_OUT = os.path.join(FIXTURES, "mosquitto")
DEFAULT_SPEC_OUT = os.path.join(FIXTURES, "spec")

# Every wait in this script is bounded by one of these.
STARTUP_TIMEOUT_SECONDS = 5.0
STEP_TIMEOUT_SECONDS = 20.0
PACKET_WAIT_TIMEOUT_SECONDS = 10.0
DRAIN_TIMEOUT_SECONDS = 5.0

PACKET_TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
    8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT", 15: "AUTH",
}

# The one user the password-protected ("closed") broker knows; see Brokers.
AUTH_USER = "fixture-user"
AUTH_PASSWORD = "fixture-secret"


# --------------------------------------------------------------------------------------------------
# MQTT framing


class FramingError(Exception):
    pass


def read_variable_byte_integer(data, offset):
    """Returns (value, length) of the variable byte integer at offset, or None if it is incomplete.
    Raises FramingError if it is longer than 4 bytes (MQTT 5.0 §1.5.5, MQTT 3.1.1 §2.2.3)."""
    value = 0
    for index in range(4):
        if offset + index >= len(data):
            return None
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if byte & 0x80 == 0:
            return value, index + 1
    raise FramingError("variable byte integer longer than 4 bytes at offset %d" % offset)


def split_packets(data):
    """Splits a byte stream into whole packets. Returns (packets, trailing_bytes) where each packet is
    (start_offset, end_offset)."""
    packets = []
    offset = 0
    while offset < len(data):
        header = read_variable_byte_integer(data, offset + 1)
        if header is None:
            break
        remaining_length, length_size = header
        end = offset + 1 + length_size + remaining_length
        if end > len(data):
            break
        packets.append((offset, end))
        offset = end
    return packets, data[offset:]


def packet_type_name(packet):
    return PACKET_TYPE_NAMES.get(packet[0] >> 4, "RESERVED")


# --------------------------------------------------------------------------------------------------
# Recording relay


class RecordedConnection:
    """One client connection through the relay: chunks in arrival order, each tagged with a global
    sequence number so the two directions can be interleaved causally (a chunk is recorded before it
    is forwarded, so an answer is always recorded after what caused it)."""

    def __init__(self, index):
        self.index = index
        self.chunks = []  # (sequence, direction, bytes)
        self.finished = threading.Event()

    def packets(self):
        """Whole packets of both directions, ordered by the sequence of the chunk that completed them."""
        result = []
        for direction in ("c2s", "s2c"):
            stream = bytearray()
            chunk_ends = []  # (end offset in stream, sequence)
            for sequence, chunk_direction, data in self.chunks:
                if chunk_direction != direction:
                    continue
                stream.extend(data)
                chunk_ends.append((len(stream), sequence))
            spans, trailing = split_packets(bytes(stream))
            if trailing:
                raise FramingError(
                    "connection %d %s ends with %d bytes of an incomplete packet: %s"
                    % (self.index, direction, len(trailing), trailing.hex())
                )
            chunk_index = 0
            for start, end in spans:
                while chunk_ends[chunk_index][0] < end:
                    chunk_index += 1
                result.append((chunk_ends[chunk_index][1], direction, bytes(stream[start:end])))
        result.sort(key=lambda item: item[0])
        return [(direction, packet) for _, direction, packet in result]

    def has_packet(self, direction, type_name):
        try:
            packets = self.packets()
        except FramingError:
            return False
        return any(d == direction and packet_type_name(p) == type_name for d, p in packets)


class Relay:
    """Listens on a free loopback port and forwards each accepted connection to the broker port,
    recording both directions."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sequence = itertools.count()
        self.connections = []
        self.closing = threading.Event()
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.accept_thread.start()

    def _accept_loop(self):
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=STARTUP_TIMEOUT_SECONDS)
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                connection = RecordedConnection(len(self.connections))
                self.connections.append(connection)
            pumps = [
                threading.Thread(target=self._pump, args=(connection, client, upstream, "c2s"), daemon=True),
                threading.Thread(target=self._pump, args=(connection, upstream, client, "s2c"), daemon=True),
            ]
            for pump in pumps:
                pump.start()
            threading.Thread(target=self._join, args=(connection, pumps, client, upstream), daemon=True).start()

    def _pump(self, connection, source, destination, direction):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                # Pass the half-close on, so a broker sees a client's abrupt end (and publishes its will).
                with contextlib.suppress(OSError):
                    destination.shutdown(socket.SHUT_WR)
                return
            with self.lock:
                connection.chunks.append((next(self.sequence), direction, data))
            try:
                destination.sendall(data)
            except OSError:
                return

    def _join(self, connection, pumps, client, upstream):
        for pump in pumps:
            pump.join()
        client.close()
        upstream.close()
        connection.finished.set()

    def connection(self, index):
        with self.lock:
            return self.connections[index] if index < len(self.connections) else None

    def connection_count(self):
        with self.lock:
            return len(self.connections)

    def wait_for_packet(self, index, direction, type_name, timeout=PACKET_WAIT_TIMEOUT_SECONDS):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            connection = self.connection(index)
            if connection is not None:
                with self.lock:
                    found = connection.has_packet(direction, type_name)
                if found:
                    return
            time.sleep(0.02)
        raise TimeoutError("connection %d: no %s %s within %.0f s" % (index, direction, type_name, timeout))

    def drain(self):
        """Waits until every recorded connection has closed on both sides."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            if not connection.finished.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("connection %d still open after the scenario ended" % connection.index)

    def close(self):
        self.closing.set()
        self.listener.close()
        self.accept_thread.join(timeout=1)


# --------------------------------------------------------------------------------------------------
# Brokers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    def __init__(self, name, directory, config_lines):
        self.name = name
        self.port = free_port()
        self.config_path = os.path.join(directory, name + ".conf")
        self.log_path = os.path.join(directory, name + ".log")
        with open(self.config_path, "w") as config:
            config.write("listener %d 127.0.0.1\n" % self.port)
            config.write("persistence false\n")
            for line in config_lines:
                config.write(line + "\n")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["mosquitto", "-c", self.config_path], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("mosquitto (%s) exited at start:\n%s" % (name, self.log_tail()))
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto (%s) did not listen on %d:\n%s" % (name, self.port, self.log_tail()))
            time.sleep(0.05)

    def log_tail(self):
        self.log.flush()
        with open(self.log_path) as log:
            return "".join(log.readlines()[-20:])

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=STARTUP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Brokers:
    """The broker set the scenarios run against:
    open   - anonymous access, an ACL that denies `denied/#`, max_keepalive 300 (so a v5 client asking
             for more is told a Server Keep Alive);
    closed - allow_anonymous false with one user in a password file (for refused CONNACKs)."""

    def __init__(self, directory):
        acl_path = os.path.join(directory, "open.acl")
        with open(acl_path, "w") as acl:
            acl.write("topic deny denied/#\ntopic readwrite #\n")
        os.chmod(acl_path, 0o644)
        password_path = os.path.join(directory, "closed.passwd")
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", password_path, AUTH_USER, AUTH_PASSWORD],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=STEP_TIMEOUT_SECONDS,
        )
        os.chmod(password_path, 0o644)
        self.brokers = {}
        try:
            self.brokers["open"] = Broker(
                "open", directory, ["allow_anonymous true", "acl_file " + acl_path, "max_keepalive 300"]
            )
            self.brokers["closed"] = Broker(
                "closed", directory, ["allow_anonymous false", "password_file " + password_path]
            )
        except Exception:
            self.stop()
            raise

    def __getitem__(self, name):
        return self.brokers[name]

    def stop(self):
        for broker in self.brokers.values():
            broker.stop()


# --------------------------------------------------------------------------------------------------
# Scenario steps


class Run:
    """Runs a command to completion. `ok_codes`: accepted exit codes (None: any)."""

    def __init__(self, command, ok_codes=(0,)):
        self.command = command
        self.ok_codes = ok_codes


class Spawn:
    """Starts a command in the background and waits until its connection has seen `until` from the
    server (e.g. SUBACK), so that what follows is ordered after it."""

    def __init__(self, name, command, until="SUBACK"):
        self.name = name
        self.command = command
        self.until = until


class Await:
    """Waits for a background command to exit by itself."""

    def __init__(self, name, ok_codes=(0,)):
        self.name = name
        self.ok_codes = ok_codes


class Kill:
    """Kills a background command with SIGKILL: its TCP connection ends without DISCONNECT."""

    def __init__(self, name):
        self.name = name


class Raw:
    """Runs a hand-built client (a function taking a RawClient factory and a command runner)."""

    def __init__(self, function, description):
        self.function = function
        self.description = description


class Scenario:
    def __init__(self, name, protocol_version, description, steps, broker="open", hand_built=False):
        self.name = name
        self.protocol_version = protocol_version
        self.description = description
        self.steps = steps
        self.broker = broker
        self.hand_built = hand_built


def render(command, port):
    return [part.replace("$PORT", str(port)) for part in command]


def shell_line(command):
    return " ".join(part if re.fullmatch(r"[\w./$=:,+#-]+", part) else "'" + part.replace("'", "'\\''") + "'" for part in command)


def run_command(command, port, ok_codes=(0,)):
    result = subprocess.run(
        render(command, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT_SECONDS
    )
    if ok_codes is not None and result.returncode not in ok_codes:
        raise RuntimeError("%s exited %d: %s" % (shell_line(command), result.returncode, result.stdout.decode(errors="replace")))


def run_scenario(scenario, brokers):
    broker = brokers[scenario.broker]
    relay = Relay(broker.port)
    background = {}
    try:
        for step in scenario.steps:
            if isinstance(step, Run):
                run_command(step.command, relay.port, step.ok_codes)
            elif isinstance(step, Spawn):
                index = relay.connection_count()
                background[step.name] = subprocess.Popen(
                    render(step.command, relay.port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
                relay.wait_for_packet(index, "s2c", step.until)
            elif isinstance(step, Await):
                process = background.pop(step.name)
                try:
                    output, _ = process.communicate(timeout=STEP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
                    raise RuntimeError("%s did not finish in time" % step.name)
                if step.ok_codes is not None and process.returncode not in step.ok_codes:
                    raise RuntimeError("%s exited %d: %s" % (step.name, process.returncode, output.decode(errors="replace")))
            elif isinstance(step, Kill):
                process = background.pop(step.name)
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=STEP_TIMEOUT_SECONDS)
            elif isinstance(step, Raw):
                step.function(lambda: RawClient(relay.port), lambda command: run_command(command, relay.port))
            else:
                raise TypeError(step)
        if background:
            raise RuntimeError("background commands left running: %s" % ", ".join(background))
        relay.drain()
        with relay.lock:
            connections = list(relay.connections)
        packets = []
        for connection in connections:
            for direction, packet in connection.packets():
                packets.append((connection.index, direction, packet))
        return packets
    finally:
        for process in background.values():
            process.kill()
            process.communicate()
        relay.close()


def scenario_text(scenario):
    lines = []
    for step in scenario.steps:
        if isinstance(step, Run):
            lines.append(shell_line(step.command))
        elif isinstance(step, Spawn):
            lines.append(shell_line(step.command) + " &   # waits for " + step.until)
        elif isinstance(step, Await):
            lines.append("wait   # " + step.name)
        elif isinstance(step, Kill):
            lines.append("kill -KILL %" + step.name + "   # connection ends without DISCONNECT")
        elif isinstance(step, Raw):
            lines.append(step.description)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# A hand-built MQTT 5.0 client for what mosquitto_sub cannot send (subscription options, multi-filter
# UNSUBSCRIBE, DISCONNECT with a reason code). Its bytes are written from the specification; the
# server's answers are mosquitto's.


def encode_variable_byte_integer(value):
    out = bytearray()
    while True:
        byte = value % 128
        value //= 128
        if value:
            byte |= 0x80
        out.append(byte)
        if not value:
            return bytes(out)


def encode_string(text):
    data = text.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def encode_properties(*properties):
    body = b"".join(properties)
    return encode_variable_byte_integer(len(body)) + body


def encode_packet(first_byte, body):
    return bytes([first_byte]) + encode_variable_byte_integer(len(body)) + body


class RawClient:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=PACKET_WAIT_TIMEOUT_SECONDS)
        self.buffer = b""
        self.pending = []

    def send(self, packet):
        self.sock.sendall(packet)

    def receive(self, type_name):
        """Returns the next packet of this type; packets of other types are kept for later calls."""
        deadline = time.monotonic() + PACKET_WAIT_TIMEOUT_SECONDS
        while True:
            for index, packet in enumerate(self.pending):
                if packet_type_name(packet) == type_name:
                    return self.pending.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("hand-built client: no %s" % type_name)
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("hand-built client: server closed while waiting for %s" % type_name)
            self.buffer += data
            spans, trailing = split_packets(self.buffer)
            self.pending.extend(self.buffer[start:end] for start, end in spans)
            self.buffer = trailing

    def expect_nothing(self, seconds):
        """Checks that the server sends nothing for a while (e.g. no retained message)."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            data = b""
        self.buffer += data
        spans, trailing = split_packets(self.buffer)
        self.pending.extend(self.buffer[start:end] for start, end in spans)
        self.buffer = trailing
        if self.pending:
            raise RuntimeError("hand-built client: unexpected %s" % ", ".join(packet_type_name(p) for p in self.pending))

    def wait_closed(self):
        """Waits for the server to close the connection."""
        self.sock.settimeout(PACKET_WAIT_TIMEOUT_SECONDS)
        while self.sock.recv(65536):
            pass
        self.sock.close()


def encode_connect_v5(client_identifier, keep_alive_seconds=60):
    body = encode_string("MQTT") + bytes([5, 0x02]) + keep_alive_seconds.to_bytes(2, "big")
    body += encode_properties() + encode_string(client_identifier)
    return encode_packet(0x10, body)


def user_property(name, value):
    return b"\x26" + encode_string(name) + encode_string(value)


def publish_packet_identifier(packet):
    """The packet identifier of a QoS 1/2 PUBLISH (after the fixed header and the topic name)."""
    _, length_size = read_variable_byte_integer(packet, 1)
    topic_start = 1 + length_size
    topic_length = int.from_bytes(packet[topic_start:topic_start + 2], "big")
    identifier_start = topic_start + 2 + topic_length
    return packet[identifier_start:identifier_start + 2]


def raw_subscription_options(new_client, run):
    for topic in ("opt/rap", "opt/rh1", "opt/rh2"):
        run(MOSQUITTO_PUB + ["-V", "mqttv5", "-i", "retainer5", "-r", "-t", topic, "-m", "kept"])
    client = new_client()
    client.send(encode_connect_v5("options5"))
    client.receive("CONNACK")
    # One SUBSCRIBE, four subscription options (MQTT 5.0 §3.8.3.1): QoS 1 + No Local; QoS 2 + Retain As
    # Published; QoS 0 + Retain Handling 1; QoS 0 + Retain Handling 2; Subscription Identifier 7.
    client.send(encode_packet(0x82, b"\x00\x01" + encode_properties(b"\x0b" + encode_variable_byte_integer(7), user_property("purpose", "fixture"))
                              + encode_string("opt/nl") + b"\x05" + encode_string("opt/rap") + b"\x0a"
                              + encode_string("opt/rh1") + b"\x10" + encode_string("opt/rh2") + b"\x20"))
    client.receive("SUBACK")
    client.receive("PUBLISH")  # retained opt/rap
    client.receive("PUBLISH")  # retained opt/rh1 (new subscription)
    client.expect_nothing(0.5)  # nothing for opt/rh2: Retain Handling 2
    # The same filter again with Retain Handling 1: the subscription exists, so no retained message.
    client.send(encode_packet(0x82, b"\x00\x02" + encode_properties() + encode_string("opt/rh1") + b"\x10"))
    client.receive("SUBACK")
    client.expect_nothing(0.5)
    # No Local: the client's own QoS 1 PUBLISH is acknowledged but not sent back to it.
    client.send(encode_packet(0x32, encode_string("opt/nl") + b"\x00\x03" + encode_properties() + b"own"))
    client.receive("PUBACK")
    client.expect_nothing(0.5)
    run(MOSQUITTO_PUB + ["-V", "mqttv5", "-i", "other5", "-q", "1", "-t", "opt/nl", "-m", "from-other"])
    delivery = client.receive("PUBLISH")  # QoS 1, carries Subscription Identifier 7
    client.send(encode_packet(0x40, publish_packet_identifier(delivery)))
    client.send(encode_packet(0xa2, b"\x00\x04" + encode_properties(user_property("purpose", "fixture"))
                              + encode_string("opt/nl") + encode_string("opt/none")))
    client.receive("UNSUBACK")  # 0x00 Success, 0x11 No subscription existed
    # DISCONNECT with Reason Code 0x04 (Disconnect with Will Message) and a Reason String.
    client.send(encode_packet(0xe0, b"\x04" + encode_properties(b"\x1f" + encode_string("fixture done"))))
    client.wait_closed()
    for topic in ("opt/rap", "opt/rh1", "opt/rh2"):
        run(MOSQUITTO_PUB + ["-V", "mqttv5", "-i", "retainer5", "-r", "-n", "-t", topic])


def raw_topic_alias_invalid(new_client, run):
    client = new_client()
    client.send(encode_connect_v5("alias5"))
    client.receive("CONNACK")  # announces Topic Alias Maximum 10
    # Topic Alias 11 exceeds it: a Protocol Error the server answers with DISCONNECT 0x94.
    client.send(encode_packet(0x30, encode_string("alias5/t") + encode_properties(b"\x23\x00\x0b") + b"x"))
    client.receive("DISCONNECT")
    client.wait_closed()


# --------------------------------------------------------------------------------------------------
# Scenarios

MOSQUITTO_PUB = ["mosquitto_pub", "-h", "127.0.0.1", "-p", "$PORT"]
MOSQUITTO_SUB = ["mosquitto_sub", "-h", "127.0.0.1", "-p", "$PORT"]
V31 = ["-V", "mqttv31"]
V311 = ["-V", "mqttv311"]
V5 = ["-V", "mqttv5"]
CREDENTIALS = ["-u", AUTH_USER, "-P", AUTH_PASSWORD]
WRONG_CREDENTIALS = ["-u", AUTH_USER, "-P", "wrong-secret"]
V5_PUBLISH_PROPERTIES = [
    "-D", "publish", "user-property", "k", "v",
    "-D", "publish", "content-type", "text/plain",
    "-D", "publish", "message-expiry-interval", "30",
    "-D", "publish", "response-topic", "r/t",
    "-D", "publish", "correlation-data", "abc",
    "-D", "publish", "payload-format-indicator", "1",
]
TIMED_OUT = (0, 27)  # mosquitto_sub -W exits 27 when its timer ends the run


def delivery_steps(version_flags, prefix):
    """A subscriber on three filters at QoS 2 receives one message at each QoS."""
    return [
        Spawn("subscriber", MOSQUITTO_SUB + version_flags + ["-i", prefix + "sub", "-q", "2", "-t", prefix + "/a/#", "-t", prefix + "/+/b", "-t", prefix + "/exact", "-C", "3"]),
        Run(MOSQUITTO_PUB + version_flags + ["-i", prefix + "pub0", "-q", "0", "-t", prefix + "/a/zero", "-m", "qos0"]),
        Run(MOSQUITTO_PUB + version_flags + ["-i", prefix + "pub1", "-q", "1", "-t", prefix + "/x/b", "-m", "qos1"]),
        Run(MOSQUITTO_PUB + version_flags + ["-i", prefix + "pub2", "-q", "2", "-t", prefix + "/exact", "-m", "qos2"]),
        Await("subscriber"),
    ]


def persistent_session_steps(version_flags, prefix, session_flags):
    subscriber = MOSQUITTO_SUB + version_flags + session_flags + ["-i", prefix + "persist", "-q", "1", "-t", prefix + "/persist"]
    return [
        Run(subscriber + ["-E"]),
        Run(MOSQUITTO_PUB + version_flags + ["-i", prefix + "feeder", "-q", "1", "-t", prefix + "/persist", "-m", "queued"]),
        Run(subscriber + ["-C", "1"]),
    ]


def will_steps(version_flags, prefix, will_flags):
    return [
        Spawn("watcher", MOSQUITTO_SUB + version_flags + ["-i", prefix + "watch", "-q", "1", "-t", prefix + "/will/#", "-C", "1"]),
        Spawn("willer", MOSQUITTO_SUB + version_flags + ["-i", prefix + "willer", "-t", prefix + "/unused", "-k", "30",
                                                          "--will-topic", prefix + "/will/gone", "--will-payload", "offline"] + will_flags),
        Kill("willer"),
        Await("watcher"),
    ]


SCENARIOS = [
    # ---- MQTT 3.1.1
    Scenario("v311-publish-qos0", 4, "QoS 0 PUBLISH: CONNECT (clean session), CONNACK, PUBLISH, DISCONNECT.", [
        Run(MOSQUITTO_PUB + V311 + ["-i", "pub311q0", "-q", "0", "-t", "fixtures/qos0", "-m", "hello"]),
    ]),
    Scenario("v311-publish-qos1-retain", 4, "Retained QoS 1 PUBLISH and PUBACK, then a zero-length retained PUBLISH that deletes it.", [
        Run(MOSQUITTO_PUB + V311 + ["-i", "pub311q1", "-q", "1", "-r", "-t", "fixtures/retained", "-m", "kept"]),
        Run(MOSQUITTO_PUB + V311 + ["-i", "clear311", "-q", "1", "-r", "-n", "-t", "fixtures/retained"]),
    ]),
    Scenario("v311-publish-qos2", 4, "QoS 2 PUBLISH, PUBREC, PUBREL, PUBCOMP.", [
        Run(MOSQUITTO_PUB + V311 + ["-i", "pub311q2", "-q", "2", "-t", "fixtures/qos2", "-m", "exactly once"]),
    ]),
    Scenario("v311-publish-not-authorized", 4, "A QoS 1 PUBLISH the broker's ACL denies: 3.1.1 has no way to say so, the PUBACK is positive [MQTT-3.3.5-2].", [
        Run(MOSQUITTO_PUB + V311 + ["-i", "denied311", "-q", "1", "-t", "denied/311", "-m", "nope"]),
    ]),
    Scenario("v311-subscribe-deliver", 4, "SUBSCRIBE with three filters at QoS 2, SUBACK, and deliveries at QoS 0, 1 and 2 in both directions.",
             delivery_steps(V311, "d311")),
    Scenario("v311-retained-to-subscriber", 4, "A retained message is sent to a new subscriber with RETAIN set, then deleted.", [
        Run(MOSQUITTO_PUB + V311 + ["-i", "ret311pub", "-q", "1", "-r", "-t", "ret311/t", "-m", "kept"]),
        Run(MOSQUITTO_SUB + V311 + ["-i", "ret311sub", "-q", "1", "-t", "ret311/t", "-C", "1"]),
        Run(MOSQUITTO_PUB + V311 + ["-i", "ret311pub", "-q", "1", "-r", "-n", "-t", "ret311/t"]),
    ]),
    Scenario("v311-will-on-abrupt-close", 4, "CONNECT with a QoS 1 retained will; the connection ends without DISCONNECT and the will reaches a subscriber.",
             will_steps(V311, "w311", ["--will-qos", "1", "--will-retain"]) + [
                 Run(MOSQUITTO_PUB + V311 + ["-i", "w311clean", "-r", "-n", "-t", "w311/will/gone"]),
             ]),
    Scenario("v311-credentials", 4, "CONNECT with user name, password and keep alive 30 to a broker that requires them.", [
        Run(MOSQUITTO_PUB + V311 + CREDENTIALS + ["-k", "30", "-i", "cred311", "-q", "1", "-t", "creds/311", "-m", "x"]),
    ], broker="closed"),
    Scenario("v311-refused-not-authorized", 4, "Anonymous CONNECT to a broker that requires a password: CONNACK 0x05 Not authorized.", [
        Run(MOSQUITTO_PUB + V311 + ["-i", "anon311", "-t", "refused/311", "-m", "x"], ok_codes=None),
    ], broker="closed"),
    Scenario("v311-refused-bad-credentials", 4, "CONNECT with a wrong password: CONNACK refusal (mosquitto 2.0 answers 0x05 Not authorized, not 0x04).", [
        Run(MOSQUITTO_PUB + V311 + WRONG_CREDENTIALS + ["-i", "bad311", "-t", "refused/311", "-m", "x"], ok_codes=None),
    ], broker="closed"),
    Scenario("v311-persistent-session", 4, "Clean session 0: subscribe and leave, a QoS 1 message is queued, the reconnect gets CONNACK session present and the message.",
             persistent_session_steps(V311, "p311", ["-c"])),
    Scenario("v311-unsubscribe", 4, "SUBSCRIBE to two filters, two UNSUBSCRIBEs sent back to back, UNSUBACKs.", [
        Run(MOSQUITTO_SUB + V311 + ["-i", "unsub311", "-t", "u311/a", "-t", "u311/b", "-U", "u311/a", "-U", "u311/b", "-W", "2"], ok_codes=TIMED_OUT),
    ]),
    Scenario("v311-ping", 4, "Keep alive 5 s and an idle connection: PINGREQ, PINGRESP.", [
        Run(MOSQUITTO_SUB + V311 + ["-i", "ping311", "-t", "ping311", "-k", "5", "-W", "7"], ok_codes=TIMED_OUT),
    ]),
    Scenario("v311-empty-client-id", 4, "CONNECT with a zero-length client identifier and clean session 1 (accepted).", [
        Run(MOSQUITTO_PUB + V311 + ["-t", "anon311/t", "-m", "x"]),
    ]),
    # ---- MQTT 3.1
    Scenario("v31-subscribe-deliver", 3, "MQIsdp level 3: SUBSCRIBE with three filters at QoS 2, deliveries at QoS 0, 1 and 2.",
             delivery_steps(V31, "d31")),
    Scenario("v31-will-credentials", 3, "MQIsdp CONNECT with user name, password, keep alive 30 and a QoS 2 retained will; QoS 1 PUBLISH.", [
        Run(MOSQUITTO_PUB + V31 + CREDENTIALS + ["-k", "30", "-i", "cred31", "-q", "1", "-t", "creds/31", "-m", "x",
                                                 "--will-topic", "will31/gone", "--will-payload", "bye", "--will-qos", "2", "--will-retain"]),
    ], broker="closed"),
    Scenario("v31-refused-not-authorized", 3, "Anonymous MQIsdp CONNECT to a broker that requires a password: CONNACK 0x05.", [
        Run(MOSQUITTO_PUB + V31 + ["-i", "anon31", "-t", "refused/31", "-m", "x"], ok_codes=None),
    ], broker="closed"),
    Scenario("v31-unsubscribe", 3, "MQIsdp SUBSCRIBE to two filters, two UNSUBSCRIBEs sent back to back, UNSUBACKs.", [
        Run(MOSQUITTO_SUB + V31 + ["-i", "unsub31", "-t", "u31/a", "-t", "u31/b", "-U", "u31/a", "-U", "u31/b", "-W", "2"], ok_codes=TIMED_OUT),
    ]),
    Scenario("v31-ping", 3, "MQIsdp keep alive 5 s and an idle connection: PINGREQ, PINGRESP.", [
        Run(MOSQUITTO_SUB + V31 + ["-i", "ping31", "-t", "ping31", "-k", "5", "-W", "7"], ok_codes=TIMED_OUT),
    ]),
    Scenario("v31-persistent-session", 3, "MQIsdp clean session 0 across two connections with a queued QoS 1 message.",
             persistent_session_steps(V31, "p31", ["-c"])),
    # ---- MQTT 5.0
    Scenario("v5-connect-properties", 5, "CONNECT properties (session expiry, receive maximum, maximum packet size, topic alias maximum, user property, request problem/response information); SUBSCRIBE user property; CONNACK properties.", [
        Run(MOSQUITTO_SUB + V5 + ["-i", "props5", "-t", "cp5/t", "-E", "-x", "60",
                                  "-D", "connect", "receive-maximum", "10",
                                  "-D", "connect", "maximum-packet-size", "10000",
                                  "-D", "connect", "topic-alias-maximum", "5",
                                  "-D", "connect", "user-property", "a", "b",
                                  "-D", "connect", "request-problem-information", "1",
                                  "-D", "connect", "request-response-information", "1",
                                  "-D", "subscribe", "user-property", "k", "v"]),
    ]),
    Scenario("v5-publish-properties", 5, "QoS 1 PUBLISH with user property, content type, message expiry, response topic, correlation data and payload format indicator, forwarded to a subscriber with its properties.", [
        Spawn("subscriber", MOSQUITTO_SUB + V5 + ["-i", "props5sub", "-q", "2", "-t", "props5/#", "-C", "1"]),
        Run(MOSQUITTO_PUB + V5 + ["-i", "props5pub", "-q", "1", "-t", "props5/t", "-m", "{\"k\":1}"] + V5_PUBLISH_PROPERTIES),
        Await("subscriber"),
    ]),
    Scenario("v5-subscribe-deliver", 5, "SUBSCRIBE with three filters at QoS 2, SUBACK, deliveries at QoS 0, 1 and 2 in both directions.",
             delivery_steps(V5, "d5")),
    Scenario("v5-no-matching-subscribers", 5, "QoS 1 and QoS 2 PUBLISH nobody listens to: PUBACK with Reason Code 0x10 (No matching subscribers); mosquitto 2.0 answers the QoS 2 one with a short-form Success PUBREC.", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "nomatch5q1", "-q", "1", "-t", "nobody5/t", "-m", "x"]),
        Run(MOSQUITTO_PUB + V5 + ["-i", "nomatch5q2", "-q", "2", "-t", "nobody5/t", "-m", "x"]),
    ]),
    Scenario("v5-publish-not-authorized", 5, "QoS 1 and QoS 2 PUBLISH the ACL denies: PUBACK and PUBREC with Reason Code 0x87 (Not authorized); the QoS 2 flow ends there, without PUBREL.", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "denied5q1", "-q", "1", "-t", "denied/5", "-m", "x"]),
        Run(MOSQUITTO_PUB + V5 + ["-i", "denied5q2", "-q", "2", "-t", "denied/5", "-m", "x"]),
    ]),
    Scenario("v5-topic-alias", 5, "Two PUBLISHes with Topic Alias 1: the first sets it, the second has an empty topic name.", [
        Spawn("subscriber", MOSQUITTO_SUB + V5 + ["-i", "alias5sub", "-q", "1", "-t", "alias5/t", "-C", "2"]),
        Run(MOSQUITTO_PUB + V5 + ["-i", "alias5pub", "-q", "1", "-t", "alias5/t", "-m", "x", "--repeat", "2", "-D", "publish", "topic-alias", "1"]),
        Await("subscriber"),
    ]),
    Scenario("v5-retain-as-published", 5, "Retain As Published: the retained copy and a live retained PUBLISH both reach the subscriber with RETAIN set.", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "rap5pub", "-r", "-t", "rap5/t", "-m", "old"]),
        Spawn("subscriber", MOSQUITTO_SUB + V5 + ["-i", "rap5sub", "-q", "1", "--retain-as-published", "-t", "rap5/t", "-C", "2"]),
        Run(MOSQUITTO_PUB + V5 + ["-i", "rap5pub", "-r", "-t", "rap5/t", "-m", "new"]),
        Await("subscriber"),
        Run(MOSQUITTO_PUB + V5 + ["-i", "rap5pub", "-r", "-n", "-t", "rap5/t"]),
    ]),
    Scenario("v5-subscription-identifier", 5, "SUBSCRIBE with Subscription Identifier 7 and a user property; the delivered PUBLISH carries the identifier.", [
        Spawn("subscriber", MOSQUITTO_SUB + V5 + ["-i", "sid5sub", "-q", "1", "-t", "sid5/#", "-C", "1",
                                                   "-D", "subscribe", "subscription-identifier", "7",
                                                   "-D", "subscribe", "user-property", "k", "v"]),
        Run(MOSQUITTO_PUB + V5 + ["-i", "sid5pub", "-q", "1", "-t", "sid5/t", "-m", "x"]),
        Await("subscriber"),
    ]),
    Scenario("v5-unsubscribe", 5, "UNSUBSCRIBE with a user property; UNSUBACK 0x00 for a subscribed filter and 0x11 for one that never was.", [
        Run(MOSQUITTO_SUB + V5 + ["-i", "unsub5", "-t", "u5/a", "-t", "u5/b", "-U", "u5/a", "-U", "u5/never",
                                  "-D", "unsubscribe", "user-property", "k", "v", "-W", "2"], ok_codes=TIMED_OUT),
    ]),
    Scenario("v5-will-properties", 5, "CONNECT with a will and will properties; the connection ends without DISCONNECT and the will reaches a subscriber with its properties.",
             will_steps(V5, "w5", ["--will-qos", "1",
                                   "-D", "will", "content-type", "text/plain",
                                   "-D", "will", "user-property", "why", "fixture",
                                   "-D", "will", "message-expiry-interval", "60",
                                   "-D", "will", "payload-format-indicator", "1",
                                   "-D", "will", "response-topic", "w5/reply",
                                   "-D", "will", "correlation-data", "c1",
                                   "-D", "will", "will-delay-interval", "0"])),
    Scenario("v5-disconnect-properties", 5, "DISCONNECT with properties (session expiry interval 0, user property).", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "disc5", "-x", "60", "-t", "disc5/t", "-m", "x",
                                  "-D", "disconnect", "session-expiry-interval", "0",
                                  "-D", "disconnect", "user-property", "bye", "now"]),
    ]),
    Scenario("v5-persistent-session", 5, "Clean start 0 with session expiry: subscribe and leave, a QoS 1 message is queued, the reconnect gets CONNACK session present and the message.",
             persistent_session_steps(V5, "p5", ["-c", "-x", "300"])),
    Scenario("v5-ping", 5, "Keep alive 5 s and an idle connection: PINGREQ, PINGRESP; the -W timer ends the run with DISCONNECT 0x04 (Disconnect with Will Message).", [
        Run(MOSQUITTO_SUB + V5 + ["-i", "ping5", "-t", "ping5", "-k", "5", "-W", "7"], ok_codes=TIMED_OUT),
    ]),
    Scenario("v5-server-keep-alive", 5, "Keep alive 400 s asked of a broker with max_keepalive 300: CONNACK carries Server Keep Alive 300.", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "ka5", "-k", "400", "-t", "ka5/t", "-m", "x"]),
    ]),
    Scenario("v5-assigned-client-identifier", 5, "CONNECT with a zero-length client identifier: CONNACK carries an Assigned Client Identifier (random on every capture).", [
        Run(MOSQUITTO_PUB + V5 + ["-t", "assigned5/t", "-m", "x"]),
    ]),
    Scenario("v5-credentials", 5, "CONNECT with user name and password to a broker that requires them.", [
        Run(MOSQUITTO_PUB + V5 + CREDENTIALS + ["-i", "cred5", "-q", "1", "-t", "creds/5", "-m", "x"]),
    ], broker="closed"),
    Scenario("v5-refused-not-authorized", 5, "Anonymous CONNECT to a broker that requires a password: CONNACK 0x87 Not authorized.", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "anon5", "-t", "refused/5", "-m", "x"], ok_codes=None),
    ], broker="closed"),
    Scenario("v5-refused-bad-credentials", 5, "CONNECT with a wrong password: CONNACK refusal (mosquitto 2.0 answers 0x87 Not authorized, not 0x86).", [
        Run(MOSQUITTO_PUB + V5 + WRONG_CREDENTIALS + ["-i", "bad5", "-t", "refused/5", "-m", "x"], ok_codes=None),
    ], broker="closed"),
    Scenario("v5-refused-bad-authentication-method", 5, "CONNECT with an Authentication Method the broker does not support: CONNACK 0x8C.", [
        Run(MOSQUITTO_PUB + V5 + ["-i", "auth5", "-t", "refused/5", "-m", "x", "-D", "connect", "authentication-method", "fixture-method"], ok_codes=None),
    ]),
    Scenario("v5-subscription-options", 5, "Hand-built client: SUBSCRIBE with No Local, Retain As Published, Retain Handling 1 and 2 and a Subscription Identifier; a QoS 1 delivery with the identifier; a two-filter UNSUBSCRIBE (UNSUBACK 0x00, 0x11); DISCONNECT 0x04 with a Reason String.", [
        Raw(raw_subscription_options, "hand-built MQTT 5.0 client, see raw_subscription_options() in scripts/capture-fixtures.py; retained messages set and cleared with mosquitto_pub -r"),
    ], hand_built=True),
    Scenario("v5-topic-alias-invalid", 5, "Hand-built client sends a PUBLISH with Topic Alias 11 above the announced maximum: the broker sends DISCONNECT 0x94.", [
        Raw(raw_topic_alias_invalid, "hand-built MQTT 5.0 client, see raw_topic_alias_invalid() in scripts/capture-fixtures.py"),
    ], hand_built=True),
]


# --------------------------------------------------------------------------------------------------
# Output


def tool_version(command):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT_SECONDS)
    match = re.search(r"version (\d+\.\d+\.\d+)", result.stdout.decode(errors="replace"))
    return match.group(1) if match else "unknown"


def fixture_json(document):
    """JSON with one packet per line, so a re-capture diffs packet by packet."""
    head = {key: value for key, value in document.items() if key != "packets"}
    lines = ["{"]
    for key, value in head.items():
        lines.append("  %s: %s," % (json.dumps(key), json.dumps(value, ensure_ascii=False)))
    lines.append('  "packets": [')
    packets = [json.dumps(packet, ensure_ascii=False) for packet in document["packets"]]
    lines.extend("    " + packet + ("," if index < len(packets) - 1 else "") for index, packet in enumerate(packets))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def check(condition, message):
    if not condition:
        raise FramingError(message)


def write_spec_fixtures(out):
    """Writes Fixtures/spec/: byte vectors taken from the examples and tables of the specifications,
    completed into whole packets. Every vector is checked to frame as exactly one packet."""
    vbi, s, pk = encode_variable_byte_integer, encode_string, encode_packet
    os.makedirs(out, exist_ok=True)
    V311 = "MQTT Version 3.1.1, OASIS Standard, 29 October 2014"
    V5 = "MQTT Version 5.0, OASIS Standard, 7 March 2019"

    def packet(direction, data, note):
        name = packet_type_name(data)
        spans, rest = split_packets(data)
        check(spans == [(0, len(data))] and not rest, "not exactly one whole packet: " + note)
        return {"direction": direction, "type": name, "hex": data.hex(), "note": note}

    def write(name, source, scenario, version, packets):
        doc = {"source": source, "scenario": scenario, "protocolVersion": version, "packets": packets}
        with open(os.path.join(out, name + ".json"), "w") as output:
            output.write(fixture_json(doc))

    # --- 3.1.1 §3.1.2.11 Figure 3.6: variable header 00 04 'MQTT' 04 CE 00 0A
    vh = bytes.fromhex("00044d51545404ce000a")
    body = vh + s("client") + s("will/topic") + s("bye") + s("user") + s("pass")
    write("v311-connect-variable-header",
          V311 + ", §3.1.2.11 Variable header non normative example (Figure 3.6)",
          "The variable header of Figure 3.6 (protocol name MQTT, level 4, connect flags 0xCE = user name, password, will QoS 1, will flag, clean session; keep alive 10), completed with the payload fields those flags require in the order of §3.1.3: client identifier \"client\", will topic \"will/topic\", will message \"bye\", user name \"user\", password \"pass\".",
          4, [packet("c2s", pk(0x10, body), "CONNECT; bytes 3-12 are Figure 3.6 verbatim")])

    # --- 3.1.1 §1.5.3.1 Figure 1.2: "A\U0002A6D4" = 00 05 41 F0 AA 9B 94
    fig12 = bytes.fromhex("000541f0aa9b94")
    check(fig12 == s("A\U0002A6D4"), "Figure 1.2")
    write("v311-utf8-string",
          V311 + ", §1.5.3.1 UTF-8 encoded string non normative example (Figure 1.2)",
          "The string of Figure 1.2, LATIN CAPITAL LETTER A followed by U+2A6D4 (a CJK Ideograph Extension B character, four bytes in UTF-8), used as a topic name and as a topic filter.",
          4, [packet("c2s", pk(0x30, fig12 + b"hi"), "QoS 0 PUBLISH, topic name A\U0002A6D4 (Figure 1.2), payload \"hi\""),
              packet("c2s", pk(0x82, b"\x00\x01" + fig12 + b"\x00"), "SUBSCRIBE packet identifier 1, topic filter A\U0002A6D4 (Figure 1.2), QoS 0")])

    # --- 3.1.1 §2.2.3 Table 2.4 remaining length
    def publish_with_remaining_length(n):
        topic = s("a/b")
        return pk(0x30, topic + b"x" * (n - len(topic)))
    rl = [packet("c2s", bytes.fromhex("c000"), "remaining length 0 = 0x00 (Table 2.4, 1 digit, from): PINGREQ")]
    for n, enc, what in [(64, "40", "the first non normative comment: 64 = 0x40"),
                         (127, "7f", "Table 2.4, 1 digit, to: 127 = 0x7F"),
                         (128, "8001", "Table 2.4, 2 digits, from: 128 = 0x80 0x01"),
                         (321, "c102", "the first non normative comment: 321 = 0xC1 0x02"),
                         (16383, "ff7f", "Table 2.4, 2 digits, to: 16 383 = 0xFF 0x7F"),
                         (16384, "808001", "Table 2.4, 3 digits, from: 16 384 = 0x80 0x80 0x01")]:
        data = publish_with_remaining_length(n)
        check(data[1:1 + len(enc) // 2].hex() == enc, what)
        rl.append(packet("c2s", data, "remaining length %s; QoS 0 PUBLISH to a/b, payload %d bytes of \"x\"" % (what, n - 5)))
    write("v311-remaining-length",
          V311 + ", §2.2.3 Remaining Length (Table 2.4 Size of Remaining Length field, and its non normative comments)",
          "Whole packets whose remaining length is each boundary of Table 2.4 that fits a test fixture (0, 127, 128, 16 383, 16 384) and the two values of the non normative comment (64, 321). The 4-digit forms (2 097 152 and 268 435 455) need packets of 2 MB and 256 MB; the same byte sequences are covered as property values in v5-variable-byte-integer.json.",
          4, rl)

    # --- 3.1.1 other non normative examples
    ex = [
        packet("c2s", pk(0x32, s("a/b") + b"\x00\x0a"), "§3.3.2.3 Figure 3.11: QoS 1 PUBLISH, topic name a/b, packet identifier 10, empty payload (§3.3.3 allows it)"),
        packet("s2c", bytes.fromhex("4002000a"), "§3.4 Figures 3.12-3.13: PUBACK packet identifier 10"),
        packet("s2c", bytes.fromhex("5002000a"), "§3.5 Figures 3.14-3.15: PUBREC packet identifier 10"),
        packet("c2s", bytes.fromhex("6202000a"), "§3.6 Figures 3.16-3.17: PUBREL packet identifier 10 (fixed header flags 0010)"),
        packet("s2c", bytes.fromhex("7002000a"), "§3.7 Figures 3.18-3.19: PUBCOMP packet identifier 10"),
        packet("c2s", pk(0x82, b"\x00\x0a" + s("a/b") + b"\x01" + s("c/d") + b"\x02"), "§3.8.2.1 Figure 3.21 and §3.8.3.1 Figure 3.23: SUBSCRIBE packet identifier 10, a/b at QoS 1, c/d at QoS 2"),
        packet("s2c", pk(0x90, b"\x00\x0a" + b"\x00\x02\x80"), "§3.9.3.1 Figure 3.27: SUBACK return codes 0 (QoS 0), 2 (QoS 2), 0x80 (Failure); packet identifier 10"),
        packet("c2s", pk(0xa2, b"\x00\x0a" + s("a/b") + s("c/d")), "§3.10.3.1 Figure 3.30: UNSUBSCRIBE packet identifier 10, a/b and c/d"),
        packet("s2c", bytes.fromhex("b002000a"), "§3.11 Figures 3.31-3.32: UNSUBACK packet identifier 10"),
        packet("c2s", bytes.fromhex("c000"), "§3.12 Figure 3.33: PINGREQ"),
        packet("s2c", bytes.fromhex("d000"), "§3.13 Figure 3.34: PINGRESP"),
        packet("c2s", bytes.fromhex("e000"), "§3.14 Figure 3.35: DISCONNECT"),
    ]
    write("v311-packet-examples",
          V311 + ", §3.3-§3.14 non normative examples and fixed header figures",
          "The spec's own examples for PUBLISH (Table 3.3), SUBSCRIBE (Table 3.5), SUBACK (Table 3.6) and UNSUBSCRIBE (Table 3.7), completed into whole packets, and the fixed-size acknowledgement and control packets with packet identifier 10.",
          4, ex)

    # --- 5.0 §3.1.2.12 Figure 3-6 (CONNECT Properties of §3.1.2.11)
    vh5 = bytes.fromhex("00044d51545405ce000a05110000000a")
    body5 = vh5 + s("client") + b"\x00" + s("will/topic") + s("bye") + s("user") + s("pass")
    write("v5-connect-variable-header",
          V5 + ", §3.1.2.12 Variable Header non-normative example (Figure 3-6), with the CONNECT Properties of §3.1.2.11",
          "The variable header of Figure 3-6 (protocol name MQTT, version 5, connect flags 0xCE = user name, password, will QoS 1, will flag, clean start; keep alive 10; property length 5 with Session Expiry Interval (17) = 10), completed with the payload of §3.1.3: client identifier \"client\", will properties of length 0, will topic \"will/topic\", will payload \"bye\", user name \"user\", password \"pass\".",
          5, [packet("c2s", pk(0x10, body5), "CONNECT; bytes 3-18 are Figure 3-6 verbatim")])

    # --- 5.0 §1.5.5 Table 1-1 variable byte integer, as Subscription Identifier values
    vb = [packet("c2s", pk(0x82, b"\x00\x01" + b"\x00" + s("a/b") + b"\x01"), "value 0 = 0x00 (Table 1-1, 1 digit, from) as a property length: SUBSCRIBE with no properties")]
    for n, enc, what in [(1, "01", "1 = 0x01"), (127, "7f", "Table 1-1, 1 digit, to: 127 = 0x7F"), (128, "8001", "Table 1-1, 2 digits, from: 128 = 0x80 0x01"),
                         (16383, "ff7f", "Table 1-1, 2 digits, to: 16 383 = 0xFF 0x7F"), (16384, "808001", "Table 1-1, 3 digits, from: 16 384 = 0x80 0x80 0x01"),
                         (2097151, "ffff7f", "Table 1-1, 3 digits, to: 2 097 151 = 0xFF 0xFF 0x7F"), (2097152, "80808001", "Table 1-1, 4 digits, from: 2 097 152 = 0x80 0x80 0x80 0x01"),
                         (268435455, "ffffff7f", "Table 1-1, 4 digits, to: 268 435 455 = 0xFF 0xFF 0xFF 0x7F")]:
        check(vbi(n).hex() == enc, what)
        prop = b"\x0b" + vbi(n)
        vb.append(packet("c2s", pk(0x82, b"\x00\x01" + vbi(len(prop)) + prop + s("a/b") + b"\x01"),
                         "Subscription Identifier %s; SUBSCRIBE packet identifier 1, a/b at QoS 1" % what))
    write("v5-variable-byte-integer",
          V5 + ", §1.5.5 Variable Byte Integer (Table 1-1 Size of Variable Byte Integer); Subscription Identifier §3.8.2.1.2",
          "Every boundary of Table 1-1 as the value of a Subscription Identifier (a Variable Byte Integer property, 1 to 268 435 455) in otherwise identical SUBSCRIBE packets; 0, which a Subscription Identifier may not be, as a Property Length.",
          5, vb)

    # --- 5.0 examples
    ex5 = [
        packet("c2s", pk(0x32, s("a/b") + b"\x00\x0a" + b"\x00"), "§3.3.2.3 Figure 3-9: QoS 1 PUBLISH, topic name a/b, packet identifier 10, no properties, empty payload"),
        packet("c2s", bytes.fromhex("e00700051100000000"), "§3.14.2 Figure 3-24: DISCONNECT Reason Code 0 (Normal disconnection), property length 5, Session Expiry Interval (17) = 0 (the figure labels byte 2 \"Length (5)\"; its bit row reads 7, an erratum)"),
        packet("c2s", bytes.fromhex("e000"), "§3.14.2.1: DISCONNECT with remaining length 0, meaning Reason Code 0x00 and no properties"),
        packet("s2c", bytes.fromhex("4002000a"), "§3.4.2.1: PUBACK with remaining length 2, meaning Reason Code 0x00 (Success) and no properties"),
        packet("s2c", bytes.fromhex("f000"), "§3.15.2.1: AUTH with remaining length 0, meaning Reason Code 0x00 (Success) and no properties"),
    ]
    write("v5-packet-examples",
          V5 + ", §3.3.2.3 PUBLISH Variable Header non-normative example (Figure 3-9), §3.14.2 DISCONNECT Variable Header non-normative example (Figure 3-24), and the short forms of §3.4.2.1, §3.14.2.1 and §3.15.2.1",
          "The spec's PUBLISH and DISCONNECT variable header examples completed into whole packets, and the short forms that omit the Reason Code and properties.",
          5, ex5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--only", action="append", metavar="NAME", help="capture only this scenario (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--spec", nargs="?", const=DEFAULT_SPEC_OUT, metavar="DIR",
                        help="write the specification vectors instead (default folder: %s)" % DEFAULT_SPEC_OUT)
    arguments = parser.parse_args()

    if arguments.spec:
        write_spec_fixtures(arguments.spec)
        print("wrote %s" % arguments.spec)
        return 0

    if arguments.list:
        for scenario in SCENARIOS:
            print("%-40s v%d  %s" % (scenario.name, scenario.protocol_version, scenario.description))
        return 0
    missing = [tool for tool in ("mosquitto", "mosquitto_pub", "mosquitto_sub", "mosquitto_passwd") if shutil.which(tool) is None]
    if missing:
        print("missing: %s (Debian: apt-get install mosquitto mosquitto-clients)" % ", ".join(missing), file=sys.stderr)
        return 2
    selected = SCENARIOS
    if arguments.only:
        known = {scenario.name for scenario in SCENARIOS}
        unknown = [name for name in arguments.only if name not in known]
        if unknown:
            print("unknown scenario(s): %s" % ", ".join(unknown), file=sys.stderr)
            return 2
        selected = [scenario for scenario in SCENARIOS if scenario.name in arguments.only]

    broker_version = tool_version(["mosquitto", "-h"])
    clients_version = tool_version(["mosquitto_pub", "--help"])
    os.makedirs(arguments.out, exist_ok=True)
    if not arguments.only:
        # A full capture owns the folder: scenarios that were removed must not linger.
        for name in os.listdir(arguments.out):
            if name.endswith(".json"):
                os.remove(os.path.join(arguments.out, name))

    failures = 0
    with tempfile.TemporaryDirectory(prefix="mqtt-fixtures-") as directory:
        # mosquitto started as root drops to the `mosquitto` user before it reads its ACL and password files.
        os.chmod(directory, 0o755)
        brokers = Brokers(directory)
        try:
            for scenario in selected:
                started = time.monotonic()
                try:
                    packets = run_scenario(scenario, brokers)
                except Exception as error:  # report every failing scenario, then exit non-zero
                    failures += 1
                    print("FAIL %-40s %s" % (scenario.name, error), file=sys.stderr)
                    print(brokers[scenario.broker].log_tail(), file=sys.stderr)
                    continue
                if scenario.hand_built:
                    source = ("mosquitto %s replies to a hand-built MQTT 5.0 client (client bytes written from the specification) "
                              "and mosquitto_pub/mosquitto_sub %s, captured by scripts/capture-fixtures.py" % (broker_version, clients_version))
                else:
                    source = "mosquitto %s via mosquitto_pub/mosquitto_sub %s, captured by scripts/capture-fixtures.py" % (broker_version, clients_version)
                document = {
                    "source": source,
                    "scenario": scenario_text(scenario),
                    "description": scenario.description,
                    "protocolVersion": scenario.protocol_version,
                    "packets": [
                        {"connection": index, "direction": direction, "type": packet_type_name(packet), "hex": packet.hex()}
                        for index, direction, packet in packets
                    ],
                }
                with open(os.path.join(arguments.out, scenario.name + ".json"), "w") as output:
                    output.write(fixture_json(document))
                types = sorted({packet_type_name(packet) for _, _, packet in packets})
                print("ok   %-40s %5.1f s  %3d packets  %s" % (scenario.name, time.monotonic() - started, len(packets), " ".join(types)))
        finally:
            brokers.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
