"""MQTT 5.0 assigned client identifiers stay unique across a restart of the node: a client that
connects with an empty identifier, Clean Start 0 and a Session Expiry must never be handed the
identifier (and so the session) of a client from before the restart."""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit

args = arguments(lambda parser: parser.add_argument("--count", type=int, default=5))
properties = Properties(PacketTypes.CONNECT)
properties.SessionExpiryInterval = 3600
results = []
for index in range(args.count):
    peer = Peer(args, "", clean=False)
    connack = peer.connect(properties=properties)
    if index == 0:
        peer.subscribe(f"{args.prefix}/aid/#", qos=1)
    peer.disconnect()
    results.append({"assigned": connack["properties"].get("AssignedClientIdentifier"),
                    "session_present": connack["session_present"]})
emit({"connections": results})
