"""MQTT 5.0 CONNACK properties, seen by paho: an empty client identifier (so one is assigned)."""

from nodetest import Peer, arguments, emit

args = arguments()
peer = Peer(args, "")
connack = peer.connect(keepalive=30)
peer.disconnect()
emit({"connack": connack})
