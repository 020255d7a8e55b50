"""Bad clients by the thousand while a well-behaved QoS 1 stream goes on.

For --seconds, --bad raw connections (asyncio) misbehave in turns: garbage bytes, a truncated CONNECT
and a close, an oversized packet (a header announcing more than the node accepts), CONNECT floods
(connect, CONNECT, close at once), slowloris (a CONNECT one byte per second, never finished) and silent
connections that send nothing. Meanwhile a paho publisher sends --messages QoS 1 messages to a paho
subscriber on a persistent session. Prints what the good stream received and how the bad connections
ended; the node's memory is sampled by the Swift test, which knows its pid.
"""

import asyncio
import random
import resource
import threading
import time

from nodetest import Peer, arguments, emit, fail, pump

args = arguments(lambda parser: (
    parser.add_argument("--bad", type=int, default=2000),
    parser.add_argument("--seconds", type=float, default=12.0),
    parser.add_argument("--messages", type=int, default=400),
))

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

KINDS = ["garbage", "truncated", "oversized", "flood", "slowloris", "silent"]
outcome = {kind: {"opened": 0, "closed_by_node": 0, "still_open": 0, "refused": 0} for kind in KINDS}


def connect_packet(client_id):
    payload = len(client_id).to_bytes(2, "big") + client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"
    body = variable + payload
    return bytes([0x10, len(body)]) + body


async def closed_by_peer(reader, timeout):
    """True if the node closed the connection (EOF or reset) within `timeout` seconds."""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(4096), timeout)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except asyncio.TimeoutError:
        return False


async def bad_client(index, deadline):
    kind = KINDS[index % len(KINDS)]
    try:
        reader, writer = await asyncio.open_connection(args.host, args.port)
    except OSError:
        outcome[kind]["refused"] += 1
        return
    outcome[kind]["opened"] += 1
    remaining = max(1.0, deadline - time.monotonic())
    try:
        if kind == "garbage":
            writer.write(bytes(random.getrandbits(8) for _ in range(64)) + b"\xf0\xff\xff\xff\xff")
        elif kind == "truncated":
            writer.write(connect_packet(f"{args.prefix}-t{index}")[:7])
        elif kind == "oversized":
            # CONNECT announcing 200 MB: more than the node's maximum packet size, refused from the header.
            writer.write(b"\x10\xff\xff\xff\x5f" + b"\x00" * 32)
        elif kind == "flood":
            writer.write(connect_packet(f"{args.prefix}-f{index}"))
            await writer.drain()
            writer.close()
            outcome[kind]["closed_by_node"] += 1  # closed by us; counted so every kind adds up
            return
        elif kind == "slowloris":
            packet = connect_packet(f"{args.prefix}-s{index}")
            for byte in packet[:-1]:
                writer.write(bytes([byte]))
                await writer.drain()
                if await closed_by_peer(reader, 1.0):
                    outcome[kind]["closed_by_node"] += 1
                    return
        # silent: nothing at all.
        await writer.drain()
        if kind == "truncated":
            # The rest never comes: the node closes it at its connect timeout.
            pass
        if await closed_by_peer(reader, remaining):
            outcome[kind]["closed_by_node"] += 1
        else:
            outcome[kind]["still_open"] += 1
    except (ConnectionResetError, BrokenPipeError):
        outcome[kind]["closed_by_node"] += 1
    finally:
        writer.close()


async def bad_clients():
    deadline = time.monotonic() + args.seconds
    tasks = []
    for index in range(args.bad):
        tasks.append(asyncio.create_task(bad_client(index, deadline)))
        if index % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)


# The bad clients run on an asyncio loop in a thread of their own; the well-behaved stream (paho is
# synchronous) in the main thread.
bad_thread = threading.Thread(target=lambda: asyncio.run(bad_clients()))
bad_thread.start()

subscriber = Peer(args, f"{args.prefix}-good-sub", clean=False)
subscriber.connect()
subscriber.subscribe(f"{args.prefix}/good", qos=1)
publisher = Peer(args, f"{args.prefix}-good-pub")
publisher.connect()
interval = args.seconds * 0.8 / args.messages
for index in range(args.messages):
    publisher.publish(f"{args.prefix}/good", str(index), qos=1, peers=(subscriber,))
    pump([subscriber], lambda: False, seconds=interval)
pump([subscriber], lambda: len(subscriber.messages) >= args.messages, what="the good stream's messages")
publisher.disconnect()
subscriber.disconnect()
bad_thread.join(timeout=args.seconds + 60)
if bad_thread.is_alive():
    fail("the bad clients did not finish")
payloads = [int(message["payload"]) for message in subscriber.messages]
emit({
    "good": {"count": len(payloads), "in_order": payloads == sorted(payloads), "distinct": len(set(payloads)),
             "disconnects": publisher.disconnects[:-1] + subscriber.disconnects[:-1]},
    "bad": outcome,
})
