"""Maximum packet size, both ways.

server: a raw client sends a PUBLISH larger than the node's maxPacketSizeInByte (--limit): the
        connection is closed (5.0: DISCONNECT 0x95 Packet too large first); other clients are unaffected.
client: an MQTT 5.0 raw subscriber announces Maximum Packet Size 128; a message that would not fit is
        never sent to it [MQTT-3.1.2-24], the ones that fit are, and the connection stays up.
"""

from nodetest import (Closed, Peer, arguments, decode_disconnect, decode_publish, emit, publish_packet, pump,
                      raw_connect, subscribe_packet)

args = arguments(lambda parser: (parser.add_argument("--case", choices=["server", "client"], required=True),
                                 parser.add_argument("--limit", type=int, default=0)))
v5 = args.version == "5"

if args.case == "server":
    bystander = Peer(args, f"{args.prefix}-bystander")
    bystander.connect()
    bystander.subscribe(f"{args.prefix}/big", qos=1)
    raw, _ = raw_connect(args, f"{args.prefix}-big")
    raw.send(publish_packet(f"{args.prefix}/big", b"x" * (args.limit + 1), qos=1, v5=v5))
    packets = raw.read_until_closed(10)
    bystander.publish(f"{args.prefix}/big", "small", qos=1)
    pump([bystander], lambda: bool(bystander.messages), seconds=10)
    emit({"closed": packets is not None, "packets": [name for name, _, _ in packets or []],
          "disconnects": [decode_disconnect(body) for name, _, body in packets or [] if name == "DISCONNECT"],
          "bystander": [m["payload"] for m in bystander.messages]})

raw, connack = raw_connect(args, f"{args.prefix}-small", properties=[("MaximumPacketSize", 128)])
raw.send(subscribe_packet(1, [(f"{args.prefix}/limited", 1)], v5=True))
raw.read()
publisher = Peer(args, f"{args.prefix}-publisher")
publisher.connect()
for payload in ["before", "y" * 500, "after"]:
    publisher.publish(f"{args.prefix}/limited", payload, qos=1)
received = []
closed = False
while True:
    try:
        name, flags, body = raw.read(3)
    except TimeoutError:
        break
    except Closed:
        closed = True
        break
    if name == "PUBLISH":
        message = decode_publish(flags, body, True)
        received.append(message["payload"][:20])
        raw.send(bytes([0x40, 0x02]) + message["packet_id"].to_bytes(2, "big"))
emit({"received": received, "closed": closed})
