"""UNSUBSCRIBE: the filter stops delivering, the others keep delivering; unsubscribing a filter that
was never subscribed is answered (5.0: 0x11 No subscription existed)."""

from nodetest import Peer, arguments, emit, pump, settle

args = arguments()
subscriber = Peer(args, f"{args.prefix}-sub")
subscriber.connect()
subscriber.subscribe(f"{args.prefix}/u/a", qos=1)
subscriber.subscribe(f"{args.prefix}/u/+", qos=1)
subscriber.subscribe(f"{args.prefix}/u/b", qos=1)
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
publisher.publish(f"{args.prefix}/u/a", "before-a", qos=1, peers=[subscriber])
publisher.publish(f"{args.prefix}/u/b", "before-b", qos=1, peers=[subscriber])
pump([subscriber, publisher], lambda: len(subscriber.messages) >= 4, seconds=10)
settle([subscriber], 0.3)
before = list(subscriber.messages)
unsubacks = {
    "exact": subscriber.unsubscribe(f"{args.prefix}/u/a"),
    "wildcard": subscriber.unsubscribe(f"{args.prefix}/u/+"),
    "never": subscriber.unsubscribe(f"{args.prefix}/u/never"),
}
publisher.publish(f"{args.prefix}/u/a", "after-a", qos=1, peers=[subscriber])
publisher.publish(f"{args.prefix}/u/b", "after-b", qos=1, peers=[subscriber])
pump([subscriber, publisher], lambda: len(subscriber.messages) > len(before), seconds=10)
settle([subscriber], 1.0)
emit({"before": before, "unsubacks": unsubacks, "after": subscriber.messages[len(before):],
      "disconnects": subscriber.disconnects})
