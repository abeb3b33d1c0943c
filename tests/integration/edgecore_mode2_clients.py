#!/usr/bin/python3
"""A stock edgecore in mqttMode 2, and a device, against a broker on 127.0.0.1:PORT.

Usage: edgecore_mode2_clients.py PORT NODE. edgecore's EventBus connects two clients to its
external broker, as paho.mqtt.golang does it: "hub-client-sub-<unix seconds>" subscribes the
fixed topics one at a time at QoS 1 (KubeEdge v1.17+ list), "hub-client-pub-<unix seconds>"
publishes at QoS 1 without retain; both with a clean session and keep-alive 30 s. The device (a
mapper) publishes on the intercepted topics and reads the answers edgecore publishes. Prints one
JSON object with what each side received; the C++ test asserts on it. Every wait is bounded.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
NODE = sys.argv[2]
TIMEOUT = 10.0

FIXED_TOPICS = [
    "$hw/events/upload/#",
    "$hw/events/device/+/+/state/update",
    "$hw/events/device/+/+/twin/+",
    "$hw/events/node/+/membership/get",
    "SYS/dis/upload_records",
    "+/user/#",
]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.changed = threading.Condition(self.lock)

    def on_message(self, _client, _userdata, m):
        with self.lock:
            self.messages.append({"topic": m.topic, "payload": m.payload.decode(), "qos": m.qos,
                                  "retain": bool(m.retain)})
            self.changed.notify_all()

    def wait_for(self, count):
        deadline = time.monotonic() + TIMEOUT
        with self.lock:
            while len(self.messages) < count and time.monotonic() < deadline:
                self.changed.wait(deadline - time.monotonic())
            return list(self.messages)


def connect(client_id, recorder=None):
    c = mqtt.Client(client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
    connected = threading.Event()
    c.on_connect = lambda _c, _u, _f, rc: connected.set() if rc == 0 else None
    if recorder is not None:
        c.on_message = recorder.on_message
    c.connect("127.0.0.1", PORT, keepalive=30)
    c.loop_start()
    if not connected.wait(TIMEOUT):
        raise SystemExit(f"{client_id}: no CONNACK")
    return c


def subscribe_one_at_a_time(c, topics):
    granted = []
    for topic in topics:
        done = threading.Event()
        result = {}

        def on_subscribe(_c, _u, _mid, qos, result=result, done=done):
            result["qos"] = list(qos)
            done.set()

        c.on_subscribe = on_subscribe
        c.subscribe(topic, 1)
        if not done.wait(TIMEOUT):
            raise SystemExit(f"no SUBACK for {topic}")
        granted.extend(result["qos"])
    return granted


def main():
    stamp = str(int(time.time() * 1000))[:10]  # edgecore: first 10 digits of Unix milliseconds
    hub = Recorder()
    device = Recorder()
    sub = connect("hub-client-sub-" + stamp, hub)
    pub = connect("hub-client-pub-" + stamp)
    granted = subscribe_one_at_a_time(sub, FIXED_TOPICS)

    mapper = connect("mapper-led1", device)
    subscribe_one_at_a_time(mapper, [
        "$hw/events/device/default/led1/twin/update/result",
        f"$hw/events/node/{NODE}/membership/updated",
    ])

    # Device -> edgecore: one message per fixed topic, at QoS 0 and 1.
    upward = [
        ("$hw/events/device/default/led1/twin/update", '{"event_id":"t1","twin":{}}', 1),
        ("$hw/events/device/default/led1/state/update", '{"state":"online"}', 0),
        (f"$hw/events/node/{NODE}/membership/get", '{"event_id":"m1"}', 1),
        ("$hw/events/upload/temperature", "21.5", 0),
        ("SYS/dis/upload_records", "records", 1),
        ("app/user/metrics", "cpu=3", 1),
    ]
    for topic, payload, qos in upward:
        mapper.publish(topic, payload, qos=qos).wait_for_publish(TIMEOUT)
    hub_got = hub.wait_for(len(upward))

    # edgecore -> device: devicetwin's answers, published by the pub client.
    downward = [
        ("$hw/events/device/default/led1/twin/update/result", '{"event_id":"t1","twin":{}}'),
        (f"$hw/events/node/{NODE}/membership/updated", '{"added_devices":[]}'),
    ]
    for topic, payload in downward:
        pub.publish(topic, payload, qos=1, retain=False).wait_for_publish(TIMEOUT)
    device_got = device.wait_for(len(downward))

    # A last round trip, so that a stray delivery to the subscriber would have arrived by now.
    mapper.publish("$hw/events/upload/last", "end", qos=1).wait_for_publish(TIMEOUT)
    hub_got = hub.wait_for(len(upward) + 1)

    for c in (mapper, pub, sub):
        c.disconnect()
        c.loop_stop()
    print(json.dumps({"stamp": stamp, "granted": granted, "hub": hub_got, "device": device_got}))


if __name__ == "__main__":
    main()
