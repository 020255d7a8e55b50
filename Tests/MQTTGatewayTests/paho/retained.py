"""Retained messages: kept per topic, sent with RETAIN set to each new subscription, delivered live with
RETAIN clear, replaced by a newer one, deleted by an empty payload."""

from nodetest import Peer, arguments, emit, pump, settle

args = arguments()
topic = f"{args.prefix}/retained/a"
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
publisher.publish(topic, "first", qos=1, retain=True)
publisher.publish(f"{args.prefix}/retained/b", "other", qos=1, retain=True)

early = Peer(args, f"{args.prefix}-early")
early.connect()
early.subscribe(topic, qos=1)
pump([early], lambda: len(early.messages) >= 1, seconds=10)
# Live while subscribed: delivered with RETAIN clear ([MQTT-3.3.1-9] in 3.1.1, Retain As Published 0 in 5.0).
publisher.publish(topic, "second", qos=1, retain=True, peers=[early])
pump([early, publisher], lambda: len(early.messages) >= 2, seconds=10)

late = Peer(args, f"{args.prefix}-late")
late.connect()
late.subscribe(topic, qos=1)
pump([late], lambda: len(late.messages) >= 1, seconds=10)

wildcard = Peer(args, f"{args.prefix}-wildcard")
wildcard.connect()
wildcard.subscribe(f"{args.prefix}/retained/+", qos=1)
pump([wildcard], lambda: len(wildcard.messages) >= 2, seconds=10)

# An empty retained payload deletes the retained message; it is still delivered to current subscribers.
publisher.publish(topic, b"", qos=1, retain=True, peers=[early])
pump([early, publisher], lambda: len(early.messages) >= 3, seconds=10)
after_clear = Peer(args, f"{args.prefix}-after-clear")
after_clear.connect()
after_clear.subscribe(topic, qos=1)
settle([after_clear, early], 1.5)
emit({"early": early.messages, "late": late.messages, "wildcard": wildcard.messages,
      "after_clear": after_clear.messages})
