"""One CONNECT as raw bytes: what does the node answer, and does it close the connection?

Reports every packet the node sent until it closed the connection (or until --seconds passed), the
decoded CONNACK, and — when the connection stays open — whether a PINGREQ is answered.
"""

from nodetest import Raw, arguments, connect_packet, decode_connack, emit, fail


def configure(parser):
    parser.add_argument("--level", type=int, help="protocol level byte; default 4 (3.1.1) or 5")
    parser.add_argument("--protocol-name", default="MQTT")
    parser.add_argument("--client-id", default=None, help="default: PREFIX-c; '' for an empty one")
    parser.add_argument("--clean", type=int, default=1)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--seconds", type=float, default=3.0)


args = arguments(configure)
level = args.level if args.level is not None else (5 if args.version == "5" else 4)
client_id = args.client_id if args.client_id is not None else args.prefix + "-c"
raw = Raw(args, v5=(level == 5))
raw.send(connect_packet(client_id, level=level, clean=bool(args.clean), username=args.username,
                        password=args.password, protocol_name=args.protocol_name))
packets = []
connack = None
closed = False
alive = None
while True:
    try:
        name, flags, body = raw.read(args.seconds)
    except TimeoutError:
        break
    except Exception:
        closed = True
        break
    packets.append({"type": name, "flags": flags, "body": body.hex()})
    if name == "CONNACK" and connack is None:
        # The 3.1.1 form is two bytes long whatever level was asked for.
        connack = decode_connack(body, v5=(len(body) > 2))
        if connack["code"] == 0:
            raw.send(bytes([0xC0, 0x00]))
            try:
                alive = raw.read(args.seconds)[0] == "PINGRESP"
            except Exception:
                alive = False
            break
if connack is None and not packets and not closed:
    fail("the node neither answered nor closed the connection")
emit({"packets": packets, "connack": connack, "closed": closed, "alive": alive})
