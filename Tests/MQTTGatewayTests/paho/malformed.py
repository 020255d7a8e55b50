"""A protocol violation closes only the connection that made it: a raw client sends garbage (after its
CONNECT, or instead of one) and is disconnected (5.0: DISCONNECT with a reason code >= 0x80 first, if
any), while a paho client on the same node keeps publishing and receiving."""

from nodetest import Peer, Raw, arguments, connect_packet, decode_disconnect, emit, fail, pump

GARBAGE = {
    # Packet type 0 is reserved [MQTT-2.1.3-1 / 3.1.1 2.2.1].
    "reserved-type": bytes([0x00, 0x02, 0xAB, 0xCD]),
    # PUBLISH with both QoS bits set [MQTT-3.3.1-4].
    "qos-3": bytes([0x36, 0x07, 0x00, 0x03]) + b"a/b" + bytes([0x00, 0x01]),
    # A remaining length whose variable byte integer runs over four bytes [MQTT-1.5.5-1].
    "endless-length": bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
    # SUBSCRIBE with reserved flags 0000 instead of 0010 [MQTT-3.8.1-1].
    "subscribe-flags": bytes([0x80, 0x08, 0x00, 0x01, 0x00, 0x03]) + b"a/b" + bytes([0x00]),
}

args = arguments(lambda parser: parser.add_argument("--garbage", choices=sorted(GARBAGE), required=True))
level = 5 if args.version == "5" else 4
topic = f"{args.prefix}/m"
bystander = Peer(args, f"{args.prefix}-bystander")
bystander.connect()
bystander.subscribe(topic, qos=1)

offender = Raw(args)
offender.send(connect_packet(f"{args.prefix}-offender", level=level))
name, _, body = offender.read()
if name != "CONNACK" or body[1] != 0:
    fail(f"offender: expected CONNACK success, got {name} {body.hex()}")
offender.send(GARBAGE[args.garbage])
packets = offender.read_until_closed(10)

stranger = Raw(args)
stranger.send(GARBAGE[args.garbage])
stranger_packets = stranger.read_until_closed(10)

bystander.publish(topic, "unaffected", qos=1)
pump([bystander], lambda: bool(bystander.messages), seconds=10)
emit({
    "offender_closed": packets is not None,
    "offender_packets": [name for name, _, _ in packets or []],
    "offender_disconnects": [decode_disconnect(body) for name, _, body in packets or [] if name == "DISCONNECT"],
    "stranger_closed": stranger_packets is not None,
    "stranger_packets": [name for name, _, _ in stranger_packets or []],
    "bystander_connected": bystander.connected,
    "bystander_messages": bystander.messages,
})
