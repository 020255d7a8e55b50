"""Keep alive: a client that stops sending is disconnected after 1.5 x its keep alive, and its will is
published; a client that keeps pinging stays.

The silent client and the pinging client are raw sockets (paho always pings); an observer (paho)
subscribes to the will topic.
"""

import time

from nodetest import Closed, Peer, Raw, arguments, connect_packet, emit, fail

args = arguments(lambda parser: parser.add_argument("--keep-alive", type=int, default=2))
level = 5 if args.version == "5" else 4
will_topic = f"{args.prefix}/will/silent"

observer = Peer(args, f"{args.prefix}-observer")
observer.connect()
observer.subscribe(will_topic, qos=1)


def open_client(client_id, will):
    raw = Raw(args)
    raw.send(connect_packet(client_id, level=level, keepalive=args.keep_alive, will=will))
    name, _, body = raw.read()
    if name != "CONNACK" or body[1] != 0:
        fail(f"{client_id}: expected CONNACK success, got {name} {body.hex()}")
    return raw


pinging = open_client(f"{args.prefix}-pinging", None)
last_ping = time.monotonic()
# Taken before the CONNECT is sent: the node's keep-alive clock starts later, when it reads it, so the
# measured silence is never shorter than the node's.
silent_since = time.monotonic()
silent = open_client(f"{args.prefix}-silent", (will_topic, "gone", 1, False, []))
packets = []
closed_after = None
pinging_alive = True
deadline = silent_since + args.keep_alive * 1.5 + 15
while time.monotonic() < deadline and closed_after is None:
    try:
        name, flags, body = silent.read(0.02)
        packets.append({"type": name, "body": body.hex()})
    except TimeoutError:
        pass
    except Closed:
        closed_after = time.monotonic() - silent_since
    if time.monotonic() - last_ping >= args.keep_alive / 2:
        last_ping = time.monotonic()
        try:
            pinging.send(bytes([0xC0, 0x00]))
        except OSError:
            pinging_alive = False
    observer.loop_once()
if closed_after is None:
    fail(f"the silent client was still connected {deadline - silent_since:.1f} s after its last packet")
# The pinging client has now been connected longer than 1.5 x keep alive; it must still be answered.
try:
    while True:
        # Drain the PINGRESPs already sent.
        pinging.read(0.3)
except TimeoutError:
    pass
except Closed:
    pinging_alive = False
if pinging_alive:
    try:
        pinging.send(bytes([0xC0, 0x00]))
        pinging_alive = pinging.read(5)[0] == "PINGRESP"
    except (Closed, TimeoutError, OSError):
        pinging_alive = False
observer_deadline = time.monotonic() + 10
while time.monotonic() < observer_deadline and not observer.messages:
    observer.loop_once()
    time.sleep(0.005)
emit({"closed_after_seconds": closed_after, "packets": packets, "pinging_alive": pinging_alive,
      "will": observer.messages})
