"""MQTT 5.0 properties a server must forward unchanged: User Properties (in order, duplicates kept),
Response Topic, Correlation Data, Content Type, Payload Format Indicator — and a request/response
round trip built on them."""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nodetest import Peer, arguments, emit, pump

args = arguments()
request_topic = f"{args.prefix}/service/request"
response_topic = f"{args.prefix}/client/response"

responder = Peer(args, f"{args.prefix}-responder")
responder.connect()
responder.subscribe(request_topic, qos=1)
requester = Peer(args, f"{args.prefix}-requester")
requester.connect()
requester.subscribe(response_topic, qos=1)

properties = Properties(PacketTypes.PUBLISH)
properties.UserProperty = [("a", "1"), ("b", "2"), ("a", "3")]
properties.ResponseTopic = response_topic
properties.CorrelationData = b"\x00\x01corr\xff"
properties.ContentType = "text/plain"
properties.PayloadFormatIndicator = 1
requester.publish(request_topic, "question", qos=1, properties=properties, peers=[responder])
pump([responder, requester], lambda: bool(responder.messages), seconds=10)
if not responder.messages:
    emit({"request": None, "response": None})
request = responder.messages[0]
answer = Properties(PacketTypes.PUBLISH)
answer.CorrelationData = bytes.fromhex(request["properties"].get("CorrelationData", ""))
answer.UserProperty = [("status", "ok")]
responder.publish(request["properties"].get("ResponseTopic", "missing"), "answer", qos=1, properties=answer,
                  peers=[requester])
pump([responder, requester], lambda: bool(requester.messages), seconds=10)
emit({"request": request, "response": requester.messages[0] if requester.messages else None})
