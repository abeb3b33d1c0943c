#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_connection_protocol: one script per rule of
connection_protocol (see the step encoding in fuzz_connection_protocol.cpp). Run it again after
changing that encoding:  python3 fuzz/gen_connection_protocol_corpus.py
"""
import pathlib

OUT = pathlib.Path(__file__).resolve().parent / "corpus/fuzz_connection_protocol"


def prefixed(s):
    s = s.encode() if isinstance(s, str) else s
    return len(s).to_bytes(2, "big") + s


def packet(first, body):
    n = len(body)
    length = bytearray()
    while True:
        digit, n = n % 128, n // 128
        length.append(digit | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(length) + body


def connect(client_id="c", keep_alive=60, will=None, level=4, clean=True):
    flags = 0x02 if clean else 0
    payload = prefixed(client_id)
    if will:
        topic, message, qos, retain = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        payload += prefixed(topic) + prefixed(message)
    name = "MQIsdp" if level == 3 else "MQTT"
    body = prefixed(name) + bytes([level, flags]) + keep_alive.to_bytes(2, "big") + payload
    return packet(0x10, body)


def publish(topic, payload, qos=0, packet_id=1):
    body = prefixed(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return packet(0x30 | qos << 1, body)


PINGREQ = packet(0xC0, b"")
DISCONNECT = packet(0xE0, b"")
CONNACK = packet(0x20, b"\x00\x00")


def subscribe(topic, qos=0, packet_id=1):
    return packet(0x82, packet_id.to_bytes(2, "big") + prefixed(topic) + bytes([qos]))


# Steps.
def data(b):
    out = bytearray()
    while b:
        chunk, b = b[:255], b[255:]
        out += bytes([0, len(chunk)]) + chunk
    return bytes(out)


def wait(ms, shift=0):
    return bytes([1 | shift << 3]) + ms.to_bytes(2, "big")


def server_close(linked=True):
    return bytes([2 | (1 if linked else 0) << 3])


def hold(on=True):
    return bytes([3 | (1 if on else 0) << 3])


def finish(linked=True):
    return bytes([4 | (1 if linked else 0) << 3])


def verdict(code):
    return bytes([5 | code << 3])


WILL = ("will/t", "gone", 1, False)

SEEDS = {
    "keepalive_expires": data(connect(keep_alive=1)) + wait(1499) + wait(1),
    "keepalive_kept_by_pingreq": data(connect(keep_alive=1))
    + (wait(1000) + data(PINGREQ)) * 4
    + wait(1500),
    "keepalive_zero": data(connect(keep_alive=0)) + wait(65535, 7),
    "connect_timeout": wait(9999) + wait(1),
    "connect_just_in_time": wait(9999) + data(connect(keep_alive=10)) + wait(20000),
    "first_packet_not_connect": data(publish("a/b", b"x")),
    "second_connect": data(connect(will=WILL)) + data(connect()),
    "will_on_socket_close": data(connect(will=WILL)) + finish(),
    "will_not_after_disconnect": data(connect(will=WILL)) + data(DISCONNECT) + finish(),
    "will_on_server_close": data(connect(will=WILL)) + server_close() + finish(),
    "takeover": data(connect(will=WILL)) + server_close(False) + finish(False),
    "takeover_after_keepalive": data(connect(keep_alive=1, will=WILL)) + wait(1500) + finish(False),
    "broker_refuses": verdict(5) + data(connect(will=WILL)) + data(PINGREQ),
    "decoder_refuses_level": data(connect(level=5)),
    "decoder_refuses_client_id": data(connect(client_id="", clean=False)),
    "malformed": data(connect()) + data(b"\x32\x01\x00"),
    "server_packet": data(connect()) + data(CONNACK),
    "session_traffic": data(connect())
    + data(subscribe("a/#", 2))
    + data(publish("a/b", b"1", 1, 7))
    + data(packet(0x40, b"\x00\x07"))
    + data(publish("a/c", b"2", 2, 8))
    + data(packet(0x62, b"\x00\x08"))
    + data(PINGREQ)
    + data(packet(0xA2, b"\x00\x09" + prefixed("a/#"))),
    "partial_packet_timeout": data(connect(keep_alive=0)) + data(publish("p", b"x" * 100)[:20])
    + wait(29999)
    + wait(1),
    "partial_then_complete": data(connect(keep_alive=60))
    + data(publish("p", b"y" * 50)[:10])
    + wait(5000)
    + data(publish("p", b"y" * 50)[10:])
    + wait(60000),
    "held_then_resumed": data(connect(keep_alive=1))
    + hold()
    + wait(1500)
    + wait(1000)
    + hold(False)
    + wait(1499)
    + wait(1),
    "mqtt31": data(connect(client_id="old", level=3, keep_alive=2)) + data(PINGREQ) + wait(3000),
    "byte_by_byte": b"".join(data(bytes([b])) for b in connect(keep_alive=5, will=WILL))
    + wait(7500),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, script in SEEDS.items():
        (OUT / name).write_bytes(script)


if __name__ == "__main__":
    main()
