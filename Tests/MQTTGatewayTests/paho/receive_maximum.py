"""MQTT 5.0 flow control: a client that has more unacknowledged QoS 2 PUBLISHes in flight than the
node's Receive Maximum is disconnected with 0x93 Receive Maximum exceeded.

A raw client sends Receive Maximum + 1 QoS 2 PUBLISHes and never PUBREL: each stays in flight."""

from nodetest import Closed, arguments, decode_disconnect, emit, publish_packet, raw_connect

args = arguments()
raw, connack = raw_connect(args, f"{args.prefix}-flood")
maximum = connack["properties"].get("ReceiveMaximum", 65535)
if maximum > 1000:
    emit({"receive_maximum": maximum, "skipped": "Receive Maximum too large to exceed in a test"})
data = b"".join(publish_packet(f"{args.prefix}/flood", f"m{index}", qos=2, packet_id=index + 1, v5=True)
                for index in range(maximum + 1))
raw.send(data)
pubrecs = 0
packets = []
closed = False
while True:
    try:
        name, flags, body = raw.read(10)
    except Closed:
        closed = True
        break
    except TimeoutError:
        break
    if name == "PUBREC":
        pubrecs += 1
    else:
        packets.append((name, body))
emit({"receive_maximum": maximum, "pubrecs": pubrecs, "closed": closed,
      "other_packets": [name for name, _ in packets],
      "disconnects": [decode_disconnect(body) for name, body in packets if name == "DISCONNECT"]})
