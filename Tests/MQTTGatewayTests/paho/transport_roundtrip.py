"""A publish/subscribe round trip over one of the node's transports (NodeTransportTests.swift).

--transport tcp|tls|ws|wss picks the listener, --transport-port its port; --cafile, --certfile and
--keyfile go to paho's tls_set. A subscriber connects (a refusal is reported, not a failure), then a
publisher sends QoS 1 messages, one of them larger than a WebSocket frame of most clients, and the
subscriber must get them all in order.

Prints {"connected": bool, "error": str, "connack": {...}, "suback": [...], "received": [...], "sizes": [...]}.
"""

import base64
import hashlib
import hmac

from nodetest import Peer, arguments, emit, fail, pump


def configure(parser):
    parser.add_argument("--transport", choices=["tcp", "tls", "ws", "wss"], required=True)
    parser.add_argument("--transport-port", type=int, required=True)
    parser.add_argument("--cafile")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--hmac-secret", help="password = Base64(HMAC-SHA1(secret, client id)), docs/auth.md")
    parser.add_argument("--messages", type=int, default=5)


args = arguments(configure)
args.port = args.transport_port


def make_peer(name):
    peer = Peer(args, f"{args.prefix}-{name}")
    if args.transport in ("ws", "wss"):
        peer.client.transport = "websockets"
        peer.client.ws_set_options(path="/mqtt")
    if args.transport in ("tls", "wss"):
        peer.client.tls_set(ca_certs=args.cafile, certfile=args.certfile, keyfile=args.keyfile)
    password = args.password
    if args.hmac_secret is not None:
        client_id = f"{args.prefix}-{name}"
        digest = hmac.new(args.hmac_secret.encode(), client_id.encode(), hashlib.sha1).digest()
        password = base64.b64encode(digest).decode()
    if args.username is not None or password is not None:
        peer.client.username_pw_set(args.username, password)
    return peer


def try_connect(peer):
    """Connects; returns None when accepted, else why not (the TLS handshake, or a CONNACK refusal)."""
    try:
        if peer.v5:
            peer.client.connect(args.host, args.port, keepalive=60, clean_start=True)
        else:
            peer.client.connect(args.host, args.port, keepalive=60)
    except Exception as error:  # ssl.SSLError, ConnectionError, WebSocketHandshakeException...
        return f"{type(error).__name__}: {error}"
    # With TLS 1.3 the server's verdict on a client certificate arrives after the client's handshake
    # is done: a refusal shows as a closed connection instead of a CONNACK.
    try:
        pump([peer], lambda: peer.connack is not None or bool(peer.disconnects), seconds=10)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    if peer.connack is None:
        return f"no CONNACK: {peer.disconnects}"
    if peer.connack["code"] != 0:
        return f"CONNACK {peer.connack['code']}"
    return None


subscriber = make_peer("sub")
error = try_connect(subscriber)
if error is not None:
    emit({"connected": False, "error": error, "connack": subscriber.connack})

topic = f"{args.prefix}/transport/{args.transport}"
suback = subscriber.subscribe(topic, qos=1)
publisher = make_peer("pub")
error = try_connect(publisher)
if error is not None:
    fail(f"the publisher could not connect: {error}")

payloads = [f"m-{index}" for index in range(args.messages)]
# Larger than one read and than the 16 KiB frames some clients use: a packet over many reads/frames.
payloads.insert(len(payloads) // 2, "L" * 200_000)
for payload in payloads:
    publisher.publish(topic, payload, qos=1, peers=[subscriber])
pump([subscriber, publisher], lambda: len(subscriber.messages) >= len(payloads), what="the messages")
publisher.disconnect(peers=[subscriber])
subscriber.disconnect()
emit({
    "connected": True,
    "connack": subscriber.connack,
    "suback": suback,
    "received": [m["payload"] if len(m["payload"]) < 100 else "L*" for m in subscriber.messages],
    "sizes": [len(m["payload"]) for m in subscriber.messages],
    "sent": [p if len(p) < 100 else "L*" for p in payloads],
})
