"""Session takeover: a second connection with the same client identifier disconnects the first
(MQTT 5.0: DISCONNECT 0x8E Session taken over) and then works normally."""

from nodetest import Peer, arguments, emit, pump

args = arguments()
client_id = f"{args.prefix}-same"
first = Peer(args, client_id)
first.connect()
second = Peer(args, client_id)
second.connect()
pump([first, second], lambda: bool(first.disconnects), what="the first connection to be disconnected")
topic = f"{args.prefix}/takeover"
suback = second.subscribe(topic, qos=1)
second.publish(topic, "after takeover", qos=1)
pump([second], lambda: bool(second.messages), seconds=10)
emit({"first_disconnects": first.disconnects, "second_connected": second.connected,
      "second_disconnects": second.disconnects, "suback": suback, "second_messages": second.messages})
