"""MQTT 5.0 topic aliases.

inbound:  paho publishes with Topic Alias properties (topic + alias sets it, empty topic + alias uses it,
          topic + known alias remaps it); a subscriber sees every message under its full topic.
outbound: a raw subscriber that announces Topic Alias Maximum 5; whatever aliases the node uses must
          resolve to the published topics and stay within 1..5.
invalid:  a raw publisher uses alias 0, or one above the node's Topic Alias Maximum: DISCONNECT 0x94.
unknown:  a raw publisher sends an empty topic with an alias it never set: DISCONNECT 0x82.
"""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import (Closed, Peer, arguments, decode_disconnect, decode_publish, emit, publish_packet, pump,
                      raw_connect, subscribe_packet)

args = arguments(lambda parser: parser.add_argument(
    "--case", choices=["inbound", "outbound", "invalid-zero", "invalid-above-maximum", "unknown"], required=True))


def alias(number):
    properties = Properties(PacketTypes.PUBLISH)
    properties.TopicAlias = number
    return properties


if args.case == "inbound":
    subscriber = Peer(args, f"{args.prefix}-sub")
    subscriber.connect()
    subscriber.subscribe(f"{args.prefix}/alias/#", qos=1)
    publisher = Peer(args, f"{args.prefix}-pub")
    publisher.connect()
    sends = [("x", "a1"), ("", "a2"), ("y", "a3"), ("", "a4")]
    for suffix, payload in sends:
        topic = f"{args.prefix}/alias/{suffix}" if suffix else ""
        publisher.publish(topic, payload, qos=1, properties=alias(1), peers=[subscriber])
    pump([subscriber, publisher], lambda: len(subscriber.messages) >= 4, seconds=10)
    emit({"messages": subscriber.messages, "publisher_disconnects": publisher.disconnects})

if args.case == "outbound":
    raw, connack = raw_connect(args, f"{args.prefix}-rawsub", properties=[("TopicAliasMaximum", 5)])
    raw.send(subscribe_packet(1, [(f"{args.prefix}/out/#", 0)], v5=True))
    suback = raw.read()
    publisher = Peer(args, f"{args.prefix}-pub")
    publisher.connect()
    for index in range(4):
        publisher.publish(f"{args.prefix}/out/{'a' if index % 2 == 0 else 'b'}", f"o{index}", qos=0)
    publishes = []
    while len(publishes) < 4:
        try:
            name, flags, body = raw.read(10)
        except (Closed, TimeoutError):
            break
        if name == "PUBLISH":
            publishes.append(decode_publish(flags, body, True))
    emit({"suback": suback[2].hex(), "publishes": publishes})

raw, connack = raw_connect(args, f"{args.prefix}-rawpub")
maximum = connack["properties"].get("TopicAliasMaximum", 0)
if args.case == "invalid-zero":
    raw.send(publish_packet(f"{args.prefix}/bad", "x", qos=0, v5=True, properties=[("TopicAlias", 0)]))
elif args.case == "invalid-above-maximum":
    raw.send(publish_packet(f"{args.prefix}/bad", "x", qos=0, v5=True, properties=[("TopicAlias", maximum + 1)]))
else:
    raw.send(publish_packet("", "x", qos=0, v5=True, properties=[("TopicAlias", 1)]))
packets = raw.read_until_closed(10)
disconnects = [decode_disconnect(body) for name, _, body in (packets or []) if name == "DISCONNECT"]
emit({"topic_alias_maximum": maximum, "closed": packets is not None, "disconnects": disconnects})
