"""SUBACK failure codes, one per filter, and the connection keeps working afterwards.

invalid:  valid and malformed filters in one SUBSCRIBE: a Malformed Packet [MQTT-4.7.1-1], so the
          connection is closed (5.0: DISCONNECT 0x81 first) and no SUBACK comes; other clients go on.
too-many: more filters in one SUBSCRIBE than the node takes (100): every one refused (3.1.1: 0x80,
          5.0: 0x97 Quota exceeded); a SUBSCRIBE after it works.

The subscriber is a raw socket: paho refuses to send an invalid filter."""

from nodetest import Closed, Peer, arguments, decode_properties, decode_publish, emit, raw_connect, subscribe_packet

args = arguments(lambda parser: parser.add_argument("--case", choices=["invalid", "too-many"], required=True))
v5 = args.version == "5"


def read_suback():
    try:
        name, _, body = raw.read(10)
    except (Closed, TimeoutError) as error:
        return {"error": type(error).__name__}
    if name == "DISCONNECT":
        return {"error": "DISCONNECT", "code": body[0] if body else 0}
    if name != "SUBACK":
        return {"error": f"got {name}"}
    offset = 2
    if v5:
        _, offset = decode_properties(body, offset)
    return {"packet_id": int.from_bytes(body[:2], "big"), "codes": list(body[offset:])}


raw, _ = raw_connect(args, f"{args.prefix}-sub")
if args.case == "invalid":
    filters = [f"{args.prefix}/ok/#", f"{args.prefix}/bad/#/x", f"{args.prefix}/bad+", f"{args.prefix}/ok/+/z"]
    raw.send(subscribe_packet(7, [(topic_filter, 1) for topic_filter in filters], v5=v5))
    subacks = [read_suback()]
else:
    filters = [f"{args.prefix}/many/{index}" for index in range(101)]
    raw.send(subscribe_packet(7, [(topic_filter, 1) for topic_filter in filters], v5=v5))
    subacks = [read_suback()]
    raw.send(subscribe_packet(8, [(f"{args.prefix}/ok/#", 1)], v5=v5))
    subacks.append(read_suback())
publisher = Peer(args, f"{args.prefix}-pub")
publisher.connect()
publisher.publish(f"{args.prefix}/ok/1", "still works", qos=1)
delivered = None
try:
    name, flags, body = raw.read(10)
    if name == "PUBLISH":
        delivered = decode_publish(flags, body, v5)
except (Closed, TimeoutError):
    pass
emit({"subacks": subacks, "delivered": delivered})
