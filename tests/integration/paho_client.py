#!/usr/bin/python3
"""Paho (python3-paho-mqtt 1.6) scenarios against a broker on 127.0.0.1:PORT.

Usage: paho_client.py PORT SCENARIO. Prints one JSON object with what was observed; the C++
test asserts on it. Every wait is bounded.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]
TIMEOUT = 10.0


def client(client_id, clean=True):
    c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", PORT, keepalive=30)
    c.loop_start()
    return c


def collect(c, topic, qos, count):
    got = []
    done = threading.Event()

    def on_message(_c, _u, m):
        got.append({"topic": m.topic, "payload": m.payload.decode(), "qos": m.qos,
                    "retain": bool(m.retain)})
        if len(got) >= count:
            done.set()

    c.on_message = on_message
    subscribed = threading.Event()
    c.on_subscribe = lambda *_: subscribed.set()
    c.subscribe(topic, qos)
    subscribed.wait(TIMEOUT)
    return got, done


def every_qos():
    sub = client("paho-sub")
    got, done = collect(sub, "paho/qos/+", 2, 3)
    pub = client("paho-pub")
    for q in (0, 1, 2):
        pub.publish(f"paho/qos/{q}", f"m{q}", qos=q).wait_for_publish(TIMEOUT)
    done.wait(TIMEOUT)
    pub.disconnect()
    sub.disconnect()
    return {"messages": sorted(got, key=lambda m: m["topic"])}


def retained():
    pub = client("paho-retain-pub")
    pub.publish("paho/retained", "kept", qos=1, retain=True).wait_for_publish(TIMEOUT)
    pub.disconnect()
    sub = client("paho-retain-sub")
    got, done = collect(sub, "paho/#", 1, 1)
    done.wait(TIMEOUT)
    sub.disconnect()
    return {"messages": got}


def persistent_session():
    first = client("paho-persistent", clean=False)
    _, _ = collect(first, "paho/offline", 1, 0)
    first.disconnect()
    first.loop_stop()
    pub = client("paho-offline-pub")
    for i in range(5):
        pub.publish("paho/offline", f"queued-{i}", qos=1).wait_for_publish(TIMEOUT)
    pub.disconnect()
    got = []
    done = threading.Event()
    present = {}
    again = mqtt.Client(client_id="paho-persistent", clean_session=False,
                        protocol=mqtt.MQTTv311)

    def on_connect(_c, _u, flags, rc):
        present["session_present"] = bool(flags.get("session present"))
        present["rc"] = rc

    def on_message(_c, _u, m):
        got.append(m.payload.decode())
        if len(got) >= 5:
            done.set()

    again.on_connect = on_connect
    again.on_message = on_message
    again.connect("127.0.0.1", PORT, keepalive=30)
    again.loop_start()
    done.wait(TIMEOUT)
    again.disconnect()
    return {"payloads": got, **present}


result = {"every_qos": every_qos, "retained": retained,
          "persistent_session": persistent_session}[SCENARIO]()
print(json.dumps(result), flush=True)
time.sleep(0.1)
