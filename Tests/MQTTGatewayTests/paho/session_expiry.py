"""MQTT 5.0 Session Expiry Interval: the session outlives the connection by that many seconds, no
longer; 0 (or absent) ends it with the connection; DISCONNECT may set it to 0.

Each case: connect with Clean Start 0, subscribe, end the connection, publish one message while
away, reconnect with Clean Start 0 and report Session Present and what arrives."""

import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit, pump, settle

args = arguments(lambda parser: parser.add_argument(
    "--case", choices=["absent", "elapsed", "kept", "disconnect-sets-zero"], required=True))
client_id = f"{args.prefix}-expiring"
topic = f"{args.prefix}/se/data"


def expiry(seconds, packet_type=PacketTypes.CONNECT):
    properties = Properties(packet_type)
    if seconds is not None:
        properties.SessionExpiryInterval = seconds
    return properties


first_expiry = {"absent": None, "elapsed": 2, "kept": 300, "disconnect-sets-zero": 300}[args.case]
session = Peer(args, client_id, clean=False)
first = session.connect(properties=expiry(first_expiry))
session.subscribe(topic, qos=1)
if args.case == "disconnect-sets-zero":
    session.disconnect(properties=expiry(0, PacketTypes.DISCONNECT))
else:
    session.disconnect()
if args.case == "elapsed":
    time.sleep(4.5)
publisher = Peer(args, f"{args.prefix}-publisher")
publisher.connect()
publisher.publish(topic, "while away", qos=1)
again = Peer(args, client_id, clean=False)
connack = again.connect(properties=expiry(300))
pump([again], lambda: bool(again.messages), seconds=5)
settle([again], 0.5)
emit({"first": first, "connack": connack, "messages": again.messages})
