"""QoS 0/1/2 in and out: each message is delivered at min(published QoS, granted QoS); a message that
matches overlapping subscriptions is delivered at least once at the highest QoS granted to them."""

from nodetest import Peer, arguments, emit, pump, settle

args = arguments()
subscriber = Peer(args, f"{args.prefix}-sub")
subscriber.connect()
subacks = {}
for granted in range(3):
    subacks[granted] = subscriber.subscribe(f"{args.prefix}/g{granted}", qos=granted)
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
acknowledged = {}
for granted in range(3):
    for published in range(3):
        mid = publisher.publish(f"{args.prefix}/g{granted}", f"g{granted}-p{published}", qos=published, peers=[subscriber])
        acknowledged[f"g{granted}-p{published}"] = publisher.completed.get(mid)
pump([subscriber, publisher], lambda: len(subscriber.messages) >= 9, seconds=15)
settle([subscriber, publisher], 0.5)

overlapping = Peer(args, f"{args.prefix}-overlapping")
overlapping.connect()
overlapping.subscribe(f"{args.prefix}/ov/+", qos=0)
overlapping.subscribe(f"{args.prefix}/ov/a", qos=2)
publisher.publish(f"{args.prefix}/ov/a", "overlap", qos=2, peers=[overlapping])
pump([overlapping, publisher], lambda: bool(overlapping.messages), seconds=10)
settle([overlapping, publisher], 0.5)
emit({"subacks": subacks, "acknowledged": acknowledged, "messages": subscriber.messages,
      "overlapping": overlapping.messages})
