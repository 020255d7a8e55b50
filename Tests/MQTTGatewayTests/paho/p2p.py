"""Point-to-point: a PUBLISH to <firstTopic>/p2p/<clientId> reaches that client without any
subscription of its own, and nobody else (DESIGN.md, "Peer-to-peer")."""

from nodetest import Peer, arguments, emit, pump, settle

args = arguments()
target_id = f"{args.prefix}-B"
target = Peer(args, target_id)
target.connect()
bystander = Peer(args, f"{args.prefix}-C")
bystander.connect()
bystander.subscribe(f"{args.prefix}/#", qos=1)
sender = Peer(args, f"{args.prefix}-A")
sender.connect()
topic = f"{args.prefix}/p2p/{target_id}"
mid = sender.publish(topic, "for B only", qos=1, peers=[target, bystander])
pump([target, bystander, sender], lambda: bool(target.messages), seconds=10)
settle([target, bystander, sender], 1.0)
emit({"acknowledged": sender.completed.get(mid), "target": target.messages, "bystander": bystander.messages})
