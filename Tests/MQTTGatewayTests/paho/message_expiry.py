"""MQTT 5.0 Message Expiry Interval: a message not delivered within its expiry is never delivered; one
delivered later carries the expiry reduced by the time it waited; an expired retained message is no
longer sent on subscribe."""

import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit, pump, settle

args = arguments()
client_id = f"{args.prefix}-offline"
topic = f"{args.prefix}/me/data"


def message_expiry(seconds):
    properties = Properties(PacketTypes.PUBLISH)
    properties.MessageExpiryInterval = seconds
    return properties


connect_properties = Properties(PacketTypes.CONNECT)
connect_properties.SessionExpiryInterval = 300
session = Peer(args, client_id, clean=False)
session.connect(properties=connect_properties)
session.subscribe(topic, qos=1)
session.disconnect()

publisher = Peer(args, f"{args.prefix}-publisher")
publisher.connect()
publisher.publish(topic, "short", qos=1, properties=message_expiry(2))
publisher.publish(topic, "long", qos=1, properties=message_expiry(120))
publisher.publish(f"{args.prefix}/me/retained", "retained short", qos=1, retain=True, properties=message_expiry(2))
time.sleep(4.5)

again = Peer(args, client_id, clean=False)
connack = again.connect(properties=connect_properties)
pump([again], lambda: bool(again.messages), seconds=10)
settle([again], 1.0)
late = Peer(args, f"{args.prefix}-late")
late.connect()
late.subscribe(f"{args.prefix}/me/retained", qos=1)
settle([late], 1.5)
emit({"connack": connack, "queued": again.messages, "retained": late.messages})
