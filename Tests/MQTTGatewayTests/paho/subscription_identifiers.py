"""MQTT 5.0 Subscription Identifiers: each delivered PUBLISH carries the identifiers of the subscriptions
it matched; a subscription without one adds none."""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit, pump, settle


def identifier(number):
    properties = Properties(PacketTypes.SUBSCRIBE)
    properties.SubscriptionIdentifier = number
    return properties


args = arguments()
subscriber = Peer(args, f"{args.prefix}-sub")
connack = subscriber.connect()
subscriber.subscribe(f"{args.prefix}/sid/+", qos=1, properties=identifier(7))
subscriber.subscribe(f"{args.prefix}/sid/#", qos=1, properties=identifier(300))
subscriber.subscribe(f"{args.prefix}/plain", qos=1)
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
publisher.publish(f"{args.prefix}/sid/a", "both", qos=1, peers=[subscriber])
publisher.publish(f"{args.prefix}/sid/a/b", "hash only", qos=1, peers=[subscriber])
publisher.publish(f"{args.prefix}/plain", "none", qos=1, peers=[subscriber])
pump([subscriber, publisher], lambda: len({m["payload"] for m in subscriber.messages}) >= 3, seconds=10)
settle([subscriber], 0.5)
emit({"connack": connack, "messages": subscriber.messages})
