"""MQTT 5.0 No Local: a subscription with No Local set gets nothing its own connection publishes, but
everything other clients publish; a subscription without it gets its own messages too."""

from nodetest import Peer, arguments, emit, pump, settle, sub_options

args = arguments()
client = Peer(args, f"{args.prefix}-self")
client.connect()
client.subscribe(f"{args.prefix}/nl/local", options=sub_options(1, no_local=True))
client.subscribe(f"{args.prefix}/nl/echo", options=sub_options(1, no_local=False))
other = Peer(args, f"{args.prefix}-other")
other.connect()
client.publish(f"{args.prefix}/nl/local", "own", qos=1, peers=[other])
client.publish(f"{args.prefix}/nl/echo", "own echo", qos=1, peers=[other])
other.publish(f"{args.prefix}/nl/local", "from other", qos=1, peers=[client])
pump([client, other], lambda: len(client.messages) >= 2, seconds=10)
settle([client, other], 1.0)
emit({"messages": client.messages})
