#!/usr/bin/python3
"""Soak test of the eventbus daemon: mixed MQTT load for N minutes, RSS printed every minute.

    bench/soak.py [--minutes 10] [--daemon build/.../apps/eventbus/eventbus] [--rate 200]
                  [--churn 10] [--retained-rate 20] [--retained-topics 200] [--interval 60]

Starts the daemon on a free port of 127.0.0.1 with a temporary edgecore-style configuration
(database and module sockets in a temporary directory), then runs, all on loopback:

  - three steady publishers, QoS 0, 1 and 2, on soak/steady/q<qos>, --rate messages/s each;
  - a live subscriber on soak/# at QoS 2 that counts what it receives and the holes in each
    steady publisher's sequence;
  - two stuck subscribers on soak/#: a mosquitto_sub with a persistent session at QoS 1 and one
    with a clean session at QoS 0, both stopped with SIGSTOP right after subscribing (the broker
    sees them stop reading, then stop answering keep-alive);
  - connection churn: --churn clients a second each connect, publish one QoS 1 message on
    soak/churn/<n>, and disconnect (every tenth one drops its socket without DISCONNECT, so its
    will is published);
  - retained messages, --retained-rate a second, on a rotating set of --retained-topics topics.

Every --interval seconds (60: once a minute) it prints the daemon's VmRSS and RssAnon and the
load counters. At the end it says whether memory stayed flat: the last sample within 10% of the
minute-2 sample (the first sample for runs shorter than three intervals), or less than 1 MiB
above it. Exit status: 0 flat,
3 grew, 1 on an error (the daemon died, did not start, or did not stop on SIGTERM).

Needs python3-paho-mqtt (Debian: apt-get install python3-paho-mqtt); mosquitto_sub is used for
the stuck subscribers when it is installed. Not run in CI. Every loop is bounded by the deadline
and by a count; the script stops by itself, and on exit or Ctrl-C it stops its load threads,
kills its child processes and removes its temporary directory.
"""
import argparse
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import paho.mqtt.client as mqtt
except ImportError:
    sys.exit("soak.py: needs paho-mqtt for this python (Debian: apt-get install python3-paho-mqtt;"
             " run it with /usr/bin/python3)")

HOST = "127.0.0.1"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYLOAD_SIZE = 64
RETAINED_SIZE = 1024
FLAT_TOLERANCE = 0.10
FLAT_FLOOR_KIB = 1024  # growth below 1 MiB is flat whatever its percentage
PR_SET_PDEATHSIG = 1


def child_setup(death_signal):
    """For a child process: its own session (so Ctrl-C reaches only this script, which then
    stops it in order) and `death_signal` if this script dies without cleaning up."""
    def setup():
        os.setsid()
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, death_signal)
        except (OSError, AttributeError):
            pass
    return setup


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def find_daemon():
    found = glob.glob(os.path.join(REPO, "build", "*", "apps", "eventbus", "eventbus"))
    found = [p for p in found if os.access(p, os.X_OK)]
    if not found:
        sys.exit("soak.py: no build/*/apps/eventbus/eventbus; build it or pass --daemon PATH")
    return max(found, key=os.path.getmtime)


def memory(pid):
    """(VmRSS, RssAnon) of a process in KiB."""
    rss = anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return rss, anon


def mib(kib):
    return kib / 1024.0


class Counters:
    """Load counters, updated from several threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}

    def add(self, key, n=1):
        with self.lock:
            self.values[key] = self.values.get(key, 0) + n

    def get(self, key):
        with self.lock:
            return self.values.get(key, 0)


def new_client(client_id, clean=True):
    c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.max_queued_messages_set(1000)  # bounded client-side queue: publish() refuses beyond it
    return c


class Load:
    """The load threads. Each one runs until `stop` is set or the deadline passes."""

    def __init__(self, port, args, deadline, stop):
        self.port = port
        self.args = args
        self.deadline = deadline
        self.stop = stop
        self.counters = Counters()
        self.threads = []
        self.next_seq = {}
        self.seq_lock = threading.Lock()

    def running(self):
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def spawn(self, target, *args):
        t = threading.Thread(target=self.guard, args=(target,) + args, daemon=True)
        t.start()
        self.threads.append(t)

    def guard(self, target, *args):
        try:
            target(*args)
        except Exception as e:  # a load thread must not die silently
            self.counters.add("errors")
            print(f"soak: {target.__name__}: {e!r}", flush=True)

    def paced(self, rate, limit):
        """Yields 0, 1, ... at `rate` per second while running, at most `limit` times."""
        start = time.monotonic()
        for n in range(limit):
            if not self.running():
                return
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
                if not self.running():
                    return
            yield n

    def max_count(self, rate):
        return int(rate * self.args.minutes * 60) + 1

    # --- the workers ---

    def steady_publisher(self, qos):
        c = new_client(f"soak-pub-q{qos}")
        c.connect(HOST, self.port, keepalive=30)
        c.loop_start()
        try:
            topic = f"soak/steady/q{qos}"
            for n in self.paced(self.args.rate, self.max_count(self.args.rate)):
                payload = f"{n:016d}".encode().ljust(PAYLOAD_SIZE, b"p")
                info = c.publish(topic, payload, qos=qos)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    self.counters.add(f"published q{qos}")
                else:
                    self.counters.add(f"not published q{qos}")
        finally:
            c.disconnect()
            c.loop_stop()

    def live_subscriber(self, ready):
        holes = {}
        expected = {}

        def on_message(_c, _u, m):
            self.counters.add("received")
            if m.topic.startswith("soak/steady/q"):
                seq = int(m.payload[:16])
                want = expected.get(m.topic, 0)
                if seq > want:
                    holes[m.topic] = holes.get(m.topic, 0) + seq - want
                    self.counters.add(f"holes {m.topic[-2:]}", seq - want)
                expected[m.topic] = max(want, seq + 1)

        def on_subscribe(*_):
            ready.set()

        c = new_client("soak-sub-live")
        c.on_message = on_message
        c.on_subscribe = on_subscribe
        c.connect(HOST, self.port, keepalive=30)
        c.subscribe("soak/#", qos=2)
        c.loop_start()
        try:
            while self.running():
                self.stop.wait(0.5)
        finally:
            c.disconnect()
            c.loop_stop()

    def churn(self):
        for n in self.paced(self.args.churn, self.max_count(self.args.churn)):
            abrupt = n % 10 == 9
            c = new_client(f"soak-churn-{n % 50}")
            if abrupt:
                c.will_set(f"soak/churn/will/{n % 50}", b"gone", qos=1)
            try:
                c.connect(HOST, self.port, keepalive=30)
                c.loop_start()
                info = c.publish(f"soak/churn/{n % 50}", f"{n:016d}".encode(), qos=1)
                info.wait_for_publish(timeout=2)
                self.counters.add("churn published" if info.is_published() else "churn unacked")
                if abrupt:
                    c.loop_stop()
                    sock = c.socket()
                    if sock is not None:
                        sock.close()  # no DISCONNECT: the broker publishes the will
                else:
                    c.disconnect()
                    c.loop_stop()
                self.counters.add("churn connections")
            except (OSError, ValueError, RuntimeError) as e:
                self.counters.add("churn errors")
                c.loop_stop()
                if self.counters.get("churn errors") <= 3:
                    print(f"soak: churn: {e!r}", flush=True)

    def retained(self):
        c = new_client("soak-retain")
        c.connect(HOST, self.port, keepalive=30)
        c.loop_start()
        try:
            body = b"r" * (RETAINED_SIZE - 16)
            rate = self.args.retained_rate
            for n in self.paced(rate, self.max_count(rate)):
                topic = f"soak/retained/{n % self.args.retained_topics}"
                info = c.publish(topic, f"{n:016d}".encode() + body, qos=1, retain=True)
                self.counters.add("retained" if info.rc == mqtt.MQTT_ERR_SUCCESS else
                                  "retained not published")
        finally:
            c.disconnect()
            c.loop_stop()


def stuck_subscriber_main(argv):
    """--stuck-subscriber PORT CLIENT_ID QOS CLEAN: subscribes to soak/# and waits, for when
    mosquitto_sub is not installed. The parent stops it with SIGSTOP."""
    port, client_id, qos, clean = int(argv[0]), argv[1], int(argv[2]), argv[3] == "1"
    c = new_client(client_id, clean=clean)
    c.connect(HOST, port, keepalive=60)
    c.subscribe("soak/#", qos=qos)
    deadline = time.monotonic() + 24 * 3600
    while time.monotonic() < deadline:
        c.loop(timeout=1.0)


class Soak:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="ebus-soak-")
        self.children = []  # subprocess.Popen, the daemon first
        self.stop = threading.Event()
        self.daemon = None
        self.load = None
        self.log_path = ""

    def write_config(self, port):
        path = os.path.join(self.tmp, "edgecore.yaml")
        with open(path, "w") as f:
            f.write(f"""database:
  dataSource: {self.tmp}/edgecore.db
modules:
  edged:
    hostnameOverride: soak-node
  eventBus:
    enable: true
    mqttMode: 0
    mqttServerInternal: tcp://{HOST}:{port}
    moduleSocket: {self.tmp}/eventbus.sock
    moduleStreamSocket: {self.tmp}/eventbus-stream.sock
""")
        return path

    def start_daemon(self, port):
        config = self.write_config(port)
        self.log_path = os.path.join(self.tmp, "eventbus.log")
        log = open(self.log_path, "w")
        self.daemon = subprocess.Popen([self.args.daemon, "--config", config], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       preexec_fn=child_setup(signal.SIGTERM))
        log.close()
        self.children.append(self.daemon)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.stop.is_set():
            if self.daemon.poll() is not None:
                raise RuntimeError(f"eventbus exited with {self.daemon.returncode}:\n"
                                   + self.log_tail())
            with open(self.log_path) as f:
                if " ready " in f.read():
                    return
            time.sleep(0.1)
        if self.stop.is_set():
            raise RuntimeError("interrupted while eventbus was starting")
        raise RuntimeError("eventbus did not log 'ready' within 15 s:\n" + self.log_tail())

    def log_tail(self, lines=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def start_stuck_subscriber(self, port, client_id, qos, clean):
        if shutil.which("mosquitto_sub"):
            argv = ["mosquitto_sub", "-h", HOST, "-p", str(port), "-t", "soak/#", "-q", str(qos),
                    "-i", client_id]
            if not clean:
                argv.append("-c")
        else:
            argv = [sys.executable, os.path.abspath(__file__), "--stuck-subscriber", str(port),
                    client_id, str(qos), "1" if clean else "0"]
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, preexec_fn=child_setup(signal.SIGKILL))
        self.children.append(p)
        return p

    def run(self):
        args = self.args
        port = free_port()
        self.start_daemon(port)
        pid = self.daemon.pid
        print(f"eventbus pid {pid} on tcp://{HOST}:{port} ({args.daemon}); "
              f"{args.minutes:g} min, samples every {args.interval:g} s", flush=True)
        print(f"load: 3 steady publishers (QoS 0/1/2) at {args.rate:g}/s each, 1 live subscriber, "
              f"2 stuck subscribers, churn {args.churn:g} connections/s, retained "
              f"{args.retained_rate:g}/s on {args.retained_topics} topics", flush=True)

        deadline = time.monotonic() + args.minutes * 60
        self.load = Load(port, args, deadline, self.stop)
        ready = threading.Event()
        self.load.spawn(self.load.live_subscriber, ready)
        ready.wait(5)
        stuck = [self.start_stuck_subscriber(port, "soak-stuck-persistent", 1, False),
                 self.start_stuck_subscriber(port, "soak-stuck-clean", 0, True)]
        time.sleep(1.0)  # let them subscribe
        for p in stuck:
            os.kill(p.pid, signal.SIGSTOP)
        for qos in (0, 1, 2):
            self.load.spawn(self.load.steady_publisher, qos)
        self.load.spawn(self.load.churn)
        self.load.spawn(self.load.retained)

        samples = []
        start = time.monotonic()
        n = 0
        print(f"{'time':>6} {'VmRSS MiB':>10} {'RssAnon MiB':>12}  load so far", flush=True)
        while not self.stop.is_set():
            n += 1
            wake = start + n * args.interval
            if wake > deadline + 0.5:
                wake = deadline
            self.stop.wait(max(0.0, wake - time.monotonic()))
            if self.stop.is_set():
                break
            if self.daemon.poll() is not None:
                raise RuntimeError(f"eventbus exited with {self.daemon.returncode} during the "
                                   "soak:\n" + self.log_tail())
            rss, anon = memory(pid)
            samples.append((rss, anon))
            c = self.load.counters
            published = "/".join(str(c.get(f"published q{q}")) for q in (0, 1, 2))
            holes = "/".join(str(c.get(f"holes q{q}")) for q in (0, 1, 2))
            print(f"{time.monotonic() - start:5.0f}s {mib(rss):10.1f} {mib(anon):12.1f}  "
                  f"published q0/q1/q2 {published}, received {c.get('received')} (holes "
                  f"{holes}), churn {c.get('churn connections')}, retained {c.get('retained')}, "
                  f"errors {c.get('errors') + c.get('churn errors')}", flush=True)
            if time.monotonic() >= deadline:
                break
        return self.verdict(samples)

    def verdict(self, samples):
        if not samples:
            print("no samples: interrupted before the first one")
            return 1
        if self.stop.is_set():
            print(f"\ninterrupted after {len(samples)} sample(s); judging what there is")
        base_index = 1 if len(samples) >= 3 else 0
        base = samples[base_index]
        last = samples[-1]
        growth = [(l - b) / b if b else 0.0 for l, b in zip(last, base)]
        flat = all(g <= FLAT_TOLERANCE or l - b < FLAT_FLOOR_KIB
                   for g, l, b in zip(growth, last, base))
        print(f"\nsample {len(samples)} vs sample {base_index + 1}: VmRSS {mib(base[0]):.1f} -> "
              f"{mib(last[0]):.1f} MiB ({growth[0]:+.1%}), RssAnon {mib(base[1]):.1f} -> "
              f"{mib(last[1]):.1f} MiB ({growth[1]:+.1%}); peak VmRSS "
              f"{mib(max(s[0] for s in samples)):.1f} MiB")
        print("FLAT: within 10% (or 1 MiB) of the baseline sample" if flat else
              "GREW: more than 10% and 1 MiB above the baseline sample")
        return 0 if flat else 3

    def cleanup(self):
        self.stop.set()
        if self.load:
            for t in self.load.threads:
                t.join(timeout=5)
        status = None
        for p in reversed(self.children):  # stuck subscribers first, the daemon last
            if p.poll() is not None:
                continue
            if p is self.daemon:
                p.send_signal(signal.SIGTERM)
                try:
                    status = p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print("eventbus did not stop within 10 s of SIGTERM; killed")
                    p.kill()
                    p.wait()
                    status = "killed"
            else:
                p.kill()  # SIGKILL works on a stopped process
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return status


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--stuck-subscriber":
        stuck_subscriber_main(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--daemon", default=None, help="eventbus binary (default: newest build)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="messages/s of each steady publisher")
    parser.add_argument("--churn", type=float, default=10.0, help="connections/s")
    parser.add_argument("--retained-rate", type=float, default=20.0)
    parser.add_argument("--retained-topics", type=int, default=200)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.churn <= 0 or args.retained_rate <= 0 \
            or args.retained_topics <= 0 or args.interval <= 0:
        parser.error("every value must be positive")
    if args.daemon is None:
        args.daemon = find_daemon()

    soak = Soak(args)

    def on_signal(signo, _frame):
        print(f"\nsoak: signal {signo}, stopping", flush=True)
        soak.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 1
    try:
        rc = soak.run()
    except Exception as e:
        print(f"soak: {e}", flush=True)
        rc = 1
    finally:
        status = soak.cleanup()
        if status not in (None, 0):
            print(f"eventbus exit status on SIGTERM: {status}")
            rc = 1
        elif status == 0:
            print("eventbus stopped cleanly (exit status 0)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
