"""MQTT 5.0 Will Delay Interval: the will of a connection that ended abnormally is published only
after the delay; a reconnect of the session within the delay cancels it."""

import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit, pump, settle

args = arguments(lambda parser: parser.add_argument(
    "--case", choices=["delayed", "reconnect-cancels"], required=True))
DELAY_SECONDS = 3
will_topic = f"{args.prefix}/will"
client_id = f"{args.prefix}-client"
observer = Peer(args, f"{args.prefix}-observer")
observer.connect()
observer.subscribe(will_topic, qos=1)

will_properties = Properties(PacketTypes.WILLMESSAGE)
will_properties.WillDelayInterval = DELAY_SECONDS
connect_properties = Properties(PacketTypes.CONNECT)
connect_properties.SessionExpiryInterval = 60
client = Peer(args, client_id, clean=False)
client.connect(properties=connect_properties,
               will={"topic": will_topic, "payload": "delayed words", "qos": 1, "retain": False,
                     "properties": will_properties})
client.drop()
dropped_at = time.monotonic()
if args.case == "reconnect-cancels":
    settle([observer], 0.5)
    again = Peer(args, client_id, clean=False)
    connack = again.connect(properties=connect_properties)
    settle([observer, again], DELAY_SECONDS + 3)
    emit({"connack": connack, "will": observer.messages})
pump([observer], lambda: bool(observer.messages), seconds=DELAY_SECONDS + 12)
arrived_after = time.monotonic() - dropped_at if observer.messages else None
emit({"will": observer.messages, "arrived_after_seconds": arrived_after, "delay_seconds": DELAY_SECONDS})
