#!/usr/bin/python3
"""A remote bus module written from docs/REMOTE.md alone, with nothing but the standard library.

remote_protocol_test.cpp runs one scenario per call and checks the lines printed:

  beehive_client.py [--stream] register PATH NAME [GROUP]
  beehive_client.py [--stream] sync-roundtrip PATH
  beehive_client.py [--stream] malformed PATH json|envelope
  beehive_client.py [--stream] oversized PATH BYTES
  beehive_client.py [--stream] connection-limit PATH LIMIT
  beehive_client.py [--stream] vanish-on-request PATH NAME
  beehive_client.py [--stream] receive PATH NAME GROUP COUNT
  beehive_client.py [--stream] receive-batched PATH NAME GROUP COUNT

Exit status 0 when the scenario ran (its outcome is in the output), 1 when it could not.
"""

import json
import socket
import sys
import time
import uuid

TIMEOUT_S = 10.0


class Closed(Exception):
    """The daemon closed the connection."""


class Connection:
    def __init__(self, path, stream):
        self.stream = stream
        kind = socket.SOCK_STREAM if stream else socket.SOCK_SEQPACKET
        self.sock = socket.socket(socket.AF_UNIX, kind)
        self.sock.settimeout(TIMEOUT_S)
        self.sock.connect(path)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        """One packet on SEQPACKET; on the stream socket the caller ends it with a newline."""
        self.sock.sendall(data)

    def send(self, message):
        self.send_raw(encode(message) + b"\n")

    def receive_raw(self, timeout=TIMEOUT_S):
        """The next message's bytes without the newline; None on timeout; Closed at EOF."""
        self.sock.settimeout(timeout)
        try:
            if not self.stream:
                packet = self.sock.recv(1 << 24)
                if not packet:
                    raise Closed()
                return packet.rstrip(b"\n")
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed()
                self.buffer += chunk
            line, _, self.buffer = self.buffer.partition(b"\n")
            return line
        except socket.timeout:
            return None
        except ConnectionResetError as e:
            raise Closed() from e

    def receive(self, timeout=TIMEOUT_S):
        raw = self.receive_raw(timeout)
        return None if raw is None else json.loads(raw)

    def wait_closed(self, timeout=TIMEOUT_S):
        """True when the daemon closes the connection within `timeout` (messages are skipped)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.receive_raw(max(0.01, deadline - time.monotonic()))
        except Closed:
            return True
        return False


def new_message(source, operation, resource, content, destination="", sync=False, parent=""):
    """A beehive message with KubeEdge's field order; empty fields left out as Go does."""
    header = {"msg_id": str(uuid.uuid4())}
    if parent:
        header["parent_msg_id"] = parent
    header["timestamp"] = int(time.time() * 1000)
    if sync:
        header["sync"] = True
    route = {"source": source}
    if destination:
        route["destination"] = destination
    route["operation"] = operation
    route["resource"] = resource
    return {"header": header, "route": route, "content": content}


def encode(message):
    return json.dumps(message, separators=(",", ":")).encode()


def compact(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def register(path, name, group="", stream=False):
    """(connection, reply message, raw reply); the reply may be an error message."""
    conn = Connection(path, stream)
    content = {"group": group} if group else ""
    request = new_message(name, "add", "module", content, sync=True)
    conn.send(request)
    raw = conn.receive_raw()
    if raw is None:
        raise RuntimeError("no registration reply")
    reply = json.loads(raw)
    if reply["header"].get("parent_msg_id") != request["header"]["msg_id"]:
        raise RuntimeError("registration reply does not answer the request: " + raw.decode())
    return conn, reply, raw


def registered(path, name, group="", stream=False):
    conn, reply, raw = register(path, name, group, stream)
    if reply["route"]["operation"] == "error":
        raise RuntimeError("registration of %s refused: %s" % (name, raw.decode()))
    return conn


def query_subscriptions(conn, name):
    """Sends the eventbus query; returns the reply to it, skipping anything else."""
    request = new_message(name, "query", "subscriptions", "", destination="eventbus", sync=True)
    conn.send(request)
    while True:
        reply = conn.receive()
        if reply is None:
            raise RuntimeError("no reply to the subscriptions query")
        if reply["header"].get("parent_msg_id") == request["header"]["msg_id"]:
            return reply


def cmd_register(args, stream):
    path, name = args[0], args[1]
    group = args[2] if len(args) > 2 else ""
    conn, reply, raw = register(path, name, group, stream)
    if reply["route"]["operation"] == "error":
        print("refused", reply["content"])
        print("closed" if conn.wait_closed() else "still-open")
        return
    print("registered", compact(reply["content"]))
    print("operation", reply["route"]["operation"])
    # Go's encoder: header first, msg_id first, then parent_msg_id.
    print("go-order", raw.startswith(b'{"header":{"msg_id":"') and b'"parent_msg_id"' in raw)


def cmd_sync_roundtrip(args, stream):
    conn = registered(args[0], "py-sync", stream=stream)
    reply = query_subscriptions(conn, "py-sync")
    print("response", reply["route"]["operation"], compact(reply["content"]))


def cmd_malformed(args, stream):
    path, kind = args[0], args[1]
    conn = registered(path, "py-bad", stream=stream)
    bad = {"json": b'{"header":{"msg_id": nope', "envelope": b'{"header":"not an object"}'}[kind]
    conn.send_raw(bad + b"\n")
    print("closed" if conn.wait_closed() else "still-open")
    second = registered(path, "py-good", stream=stream)
    print("second", query_subscriptions(second, "py-good")["route"]["operation"])


def cmd_oversized(args, stream):
    path, size = args[0], int(args[1])
    conn = registered(path, "py-big", stream=stream)
    conn.send(new_message("py-big", "publish", "big/topic", "x" * size, destination="eventbus"))
    print("closed" if conn.wait_closed() else "still-open")
    second = registered(path, "py-small", stream=stream)
    print("second", query_subscriptions(second, "py-small")["route"]["operation"])


def cmd_connection_limit(args, stream):
    path, limit = args[0], int(args[1])
    kept = [registered(path, "py-limit-%d" % i, stream=stream) for i in range(limit)]
    extra = Connection(path, stream)
    try:
        message = extra.receive()
        if message is None:
            print("extra silent")
        else:
            print("extra", message["route"]["operation"], message["content"])
        print("extra", "closed" if extra.wait_closed() else "still-open")
    except Closed:
        print("extra closed-without-message")
    print("first", query_subscriptions(kept[0], "py-limit-0")["route"]["operation"])


def cmd_vanish_on_request(args, stream):
    path, name = args[0], args[1]
    conn = registered(path, name, stream=stream)
    print("registered", flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        message = conn.receive(max(0.01, deadline - time.monotonic()))
        if message and message["header"].get("sync"):
            print("request", message["route"]["operation"], message["route"]["resource"])
            conn.close()
            print("vanished", flush=True)
            return
    print("no-request")


def cmd_receive(args, stream):
    path, name, group, count = args[0], args[1], args[2], int(args[3])
    conn = registered(path, name, group, stream)
    for _ in range(count):
        raw = conn.receive_raw()
        if raw is None:
            print("timeout")
            return
        print("message", raw.decode())


def cmd_receive_batched(args, stream):
    """Registers with "batch": true: packets may hold several messages, one per line (on the
    stream socket every line is a message anyway). Receives COUNT messages, then sends two sync
    queries to the eventbus module in one packet and waits for both responses."""
    path, name, group, count = args[0], args[1], args[2], int(args[3])
    conn = Connection(path, stream)
    request = new_message(name, "add", "module", {"group": group, "batch": True}, sync=True)
    conn.send(request)
    pending = []  # lines received and not yet taken
    most_per_packet = 0

    def next_line():
        nonlocal most_per_packet
        while not pending:
            if stream:
                raw = conn.receive_raw()
                if raw is None:
                    return None
                pending.append(raw)
                continue
            conn.sock.settimeout(TIMEOUT_S)
            try:
                packet = conn.sock.recv(1 << 24)
            except socket.timeout:
                return None
            if not packet:
                raise Closed()
            lines = [line for line in packet.split(b"\n") if line]
            most_per_packet = max(most_per_packet, len(lines))
            pending.extend(lines)
        return pending.pop(0)

    reply = json.loads(next_line())
    if reply["header"].get("parent_msg_id") != request["header"]["msg_id"]:
        raise RuntimeError("registration reply does not answer the request")
    if reply["route"]["operation"] == "error":
        raise RuntimeError("registration refused: " + compact(reply["content"]))
    for _ in range(count):
        raw = next_line()
        if raw is None:
            print("timeout")
            return
        print("message", raw.decode())
    queries = [new_message(name, "query", "subscriptions", "", destination="eventbus", sync=True)
               for _ in range(2)]
    conn.send_raw(b"".join(encode(q) + b"\n" for q in queries))
    waiting = {q["header"]["msg_id"] for q in queries}
    while waiting:
        raw = next_line()
        if raw is None:
            print("timeout")
            return
        waiting.discard(json.loads(raw)["header"].get("parent_msg_id"))
    print("responses 2")
    if not stream:
        print("most-per-packet", most_per_packet)


COMMANDS = {
    "register": cmd_register,
    "sync-roundtrip": cmd_sync_roundtrip,
    "malformed": cmd_malformed,
    "oversized": cmd_oversized,
    "connection-limit": cmd_connection_limit,
    "vanish-on-request": cmd_vanish_on_request,
    "receive": cmd_receive,
    "receive-batched": cmd_receive_batched,
}


def main(argv):
    stream = len(argv) > 1 and argv[1] == "--stream"
    args = argv[2:] if stream else argv[1:]
    if not args or args[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 1
    try:
        COMMANDS[args[0]](args[1:], stream)
    except (OSError, RuntimeError, Closed, ValueError, KeyError) as e:
        print("failed", type(e).__name__, e)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
