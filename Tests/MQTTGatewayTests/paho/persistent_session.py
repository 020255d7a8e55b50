"""Persistent sessions, one phase per run (the test restarts or kills the node between phases).

subscribe: connect with Clean Session 0 (5.0: Clean Start 0, Session Expiry 3600 s), subscribe
           PREFIX/ps/# at --qos, DISCONNECT.
publish:   another client publishes --count messages at --qos to PREFIX/ps/data while the session is away.
resume:    reconnect the session (Clean Session / Clean Start 0 unless --clean): report Session Present,
           every message that arrives, then whether a message published now still arrives (the
           subscription was kept without subscribing again).
"""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit, pump, settle


def configure(parser):
    parser.add_argument("--phase", choices=["subscribe", "publish", "resume"], required=True)
    parser.add_argument("--qos", type=int, default=1)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--clean", action="store_true", help="resume with Clean Session / Clean Start 1")


args = arguments(configure)
client_id = f"{args.prefix}-persistent"
topic = f"{args.prefix}/ps/data"


def session_properties():
    if args.version != "5":
        return None
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    return properties


if args.phase == "subscribe":
    session = Peer(args, client_id, clean=False)
    connack = session.connect(properties=session_properties())
    codes = session.subscribe(f"{args.prefix}/ps/#", qos=args.qos)
    session.disconnect()
    emit({"connack": connack, "suback": codes})

if args.phase == "publish":
    publisher = Peer(args, f"{args.prefix}-publisher")
    publisher.connect()
    codes = [publisher.completed.get(publisher.publish(topic, str(index), qos=args.qos)) for index in range(args.count)]
    publisher.disconnect()
    emit({"acknowledged": len([code for code in codes if code is not None and code < 0x80])})

# With --clean nothing should arrive: wait long enough to see something wrongly queued, not for the count.
wait_seconds = 3 if args.clean else 20
session = Peer(args, client_id, clean=args.clean)
connack = session.connect(properties=session_properties())
pump([session], lambda: len(session.messages) >= args.count, seconds=wait_seconds)
settle([session], 1.0)
queued = list(session.messages)
publisher = Peer(args, f"{args.prefix}-publisher")
publisher.connect()
publisher.publish(topic, "after", qos=args.qos, peers=[session])
pump([session, publisher], lambda: any(m["payload"] == "after" for m in session.messages),
     seconds=2 if args.clean else 10)
emit({"connack": connack, "queued": queued, "after": session.messages[len(queued):]})
