"""Shared subscriptions $share/{group}/{filter}: each message goes to one member of the group (a plain
subscriber on the same filter still gets all); a member that leaves hands its unacknowledged
messages to the others.

distribute: two paho members and one plain subscriber; COUNT messages at QoS 1.
handoff:    a raw member that never acknowledges and a paho member; after the raw member has
            received its share it closes the connection; the paho member must end up with every message.
"""

import time

from nodetest import Closed, Peer, arguments, decode_publish, emit, pump, raw_connect, settle, subscribe_packet

args = arguments(lambda parser: parser.add_argument("--case", choices=["distribute", "handoff"], required=True))
COUNT = 20
topic = f"{args.prefix}/sh/data"
shared_filter = f"$share/group1/{args.prefix}/sh/#"
publisher = Peer(args, f"{args.prefix}-publisher")
publisher.connect()

if args.case == "distribute":
    members = [Peer(args, f"{args.prefix}-member{index}") for index in range(2)]
    codes = []
    for member in members:
        member.connect()
        codes.append(member.subscribe(shared_filter, qos=1))
    plain = Peer(args, f"{args.prefix}-plain")
    plain.connect()
    plain.subscribe(f"{args.prefix}/sh/#", qos=1)
    everyone = [*members, plain, publisher]
    for index in range(COUNT):
        publisher.publish(topic, str(index), qos=1, peers=everyone)
    pump(everyone, lambda: sum(len(m.messages) for m in members) >= COUNT and len(plain.messages) >= COUNT, seconds=15)
    settle(everyone, 1.0)
    emit({"subacks": codes, "members": [[m["payload"] for m in member.messages] for member in members],
          "plain": [m["payload"] for m in plain.messages]})

v5 = args.version == "5"
raw, _ = raw_connect(args, f"{args.prefix}-silent-member")
raw.send(subscribe_packet(1, [(shared_filter, 1)], v5=v5))
raw_suback = raw.read()[2].hex()
member = Peer(args, f"{args.prefix}-member")
member.connect()
member_codes = member.subscribe(shared_filter, qos=1)
for index in range(COUNT):
    publisher.publish(topic, str(index), qos=1, peers=[member])
silent = []
deadline = time.monotonic() + 15
while len(silent) + len(member.messages) < COUNT and time.monotonic() < deadline:
    try:
        name, flags, body = raw.read(0.02)
        if name == "PUBLISH":
            silent.append(decode_publish(flags, body, v5)["payload"])
    except TimeoutError:
        pass
    except Closed:
        break
    member.loop_once()
before_handoff = [m["payload"] for m in member.messages]
raw.close()
pump([member], lambda: {m["payload"] for m in member.messages} >= {str(i) for i in range(COUNT)}, seconds=15)
settle([member], 0.5)
emit({"raw_suback": raw_suback, "member_suback": member_codes, "silent": silent,
      "member_before_handoff": before_handoff, "member": [m["payload"] for m in member.messages]})
