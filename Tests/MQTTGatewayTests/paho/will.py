"""Will messages: published when the connection ends without DISCONNECT (or, in 5.0, with DISCONNECT
0x04 Disconnect with Will Message); never after a normal DISCONNECT."""

from nodetest import Peer, arguments, emit, pump, reason, settle

args = arguments(lambda parser: parser.add_argument(
    "--case", choices=["abnormal", "clean", "disconnect-with-will"], required=True))
will_topic = f"{args.prefix}/will"
observer = Peer(args, f"{args.prefix}-observer")
observer.connect()
observer.subscribe(will_topic, qos=1)

client = Peer(args, f"{args.prefix}-client")
client.connect(will={"topic": will_topic, "payload": "last words", "qos": 1, "retain": False})
client.publish(f"{args.prefix}/alive", "still here", qos=1)
if args.case == "abnormal":
    client.drop()
elif args.case == "clean":
    client.disconnect(peers=[observer])
else:
    client.disconnect(reasoncode=reason(0x04), peers=[observer])
if args.case == "clean":
    settle([observer], 2.0)
else:
    pump([observer], lambda: bool(observer.messages), seconds=10)
    settle([observer], 0.3)
emit({"will": observer.messages})
