"""Ordering: COUNT messages published in a row to one topic arrive in the order they were published."""

from nodetest import Peer, arguments, emit, pump, settle


def configure(parser):
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--qos", type=int, default=1)


args = arguments(configure)
topic = f"{args.prefix}/ordered"
subscriber = Peer(args, f"{args.prefix}-sub")
subscriber.connect()
subscriber.subscribe(topic, qos=args.qos)
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
mids = [publisher.publish(topic, str(index), qos=args.qos, peers=[subscriber], wait=False) for index in range(args.count)]
pump([publisher, subscriber], lambda: len(subscriber.messages) >= args.count, seconds=60)
settle([publisher, subscriber], 0.3)
acknowledged = sum(1 for mid in mids if mid in publisher.completed)
emit({"received": [int(message["payload"]) for message in subscriber.messages],
      "qos": sorted({message["qos"] for message in subscriber.messages}), "acknowledged": acknowledged})
