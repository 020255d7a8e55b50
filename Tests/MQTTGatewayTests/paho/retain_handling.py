"""MQTT 5.0 Retain Handling (0: send on every subscribe, 1: only on a new subscription, 2: never) and
Retain As Published."""

from nodetest import Peer, arguments, emit, pump, settle, sub_options

args = arguments()
topic = f"{args.prefix}/rh"
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
publisher.publish(topic, "kept", qos=1, retain=True)

results = {}
for handling in range(3):
    peer = Peer(args, f"{args.prefix}-rh{handling}")
    peer.connect()
    peer.subscribe(topic, options=sub_options(1, retain_handling=handling))
    settle([peer], 1.0)
    first = list(peer.messages)
    # The same filter again: the subscription exists now.
    peer.subscribe(topic, options=sub_options(1, retain_handling=handling))
    settle([peer], 1.0)
    results[str(handling)] = {"first": first, "again": peer.messages[len(first):]}

live_topic = f"{args.prefix}/rap"
as_published = Peer(args, f"{args.prefix}-rap1")
as_published.connect()
as_published.subscribe(live_topic, options=sub_options(1, retain_as_published=True))
cleared = Peer(args, f"{args.prefix}-rap0")
cleared.connect()
cleared.subscribe(live_topic, options=sub_options(1, retain_as_published=False))
publisher.publish(live_topic, "live retained", qos=1, retain=True, peers=[as_published, cleared])
publisher.publish(live_topic, "live plain", qos=1, retain=False, peers=[as_published, cleared])
pump([as_published, cleared], lambda: len(as_published.messages) >= 2 and len(cleared.messages) >= 2, seconds=10)
emit({"handling": results, "retain_as_published": as_published.messages, "retain_cleared": cleared.messages})
