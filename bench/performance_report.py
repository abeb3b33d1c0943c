#!/usr/bin/python3
"""Runs every eventbus-vs-mosquitto bench of the performance report and writes docs/PERFORMANCE.md.

    /usr/bin/python3 bench/performance_report.py --build build/hbench [--quick] [--out docs/PERFORMANCE.md]

It configures and builds the bench targets in the build directory when needed, runs each bench
with --json into a file of its own (one JSON object per measured run: group, scenario, broker,
run, metrics, note), takes the median of each metric over the runs, and writes one table per
section: eventbus | mosquitto | ratio eventbus/mosquitto | target | met?. A bench that is not
built, fails without results or times out shows as "not run: <reason>"; nothing is ever filled
in. --quick passes small counts and one run everywhere: a smoke test of the whole pipeline, not a
measurement. Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"
TARGETS = ["broker_server", "scenario_compare", "churn_compare", "memory_compare",
           "routing_compare", "eventbus"]


# --- targets -----------------------------------------------------------------------------------
# A target is (goal, text, check): goal is the wording (the summary groups rows by it),
# text what the row shows, check(ours, theirs) -> True/False, or None when it cannot be judged.

def at_most(limit):
    return lambda ours, theirs: ours <= limit

def at_least(limit):
    return lambda ours, theirs: ours >= limit

def zero(ours, theirs):
    return ours == 0

def times_theirs(factor):
    return lambda ours, theirs: None if theirs is None else ours <= factor * theirs

MB_KIB = 5_000_000 / 1024  # 5 MB in KiB

GOAL_IDLE_CONN = "memory per idle connection <= 350 B (10k and 50k clients)"
GOAL_IDLE_DAEMON = "idle daemon private memory <= 5 MB (RssAnon/Pss)"
GOAL_ROUTING = ("MQTT->bus routing >= 1,000,000 msgs/s in-process and >= 500,000 msgs/s remote "
                "over SEQPACKET, 0 lost")
GOAL_THROUGHPUT = ("every throughput scenario <= 0.2x mosquitto's broker CPU per delivered "
                   "message, 0 lost, 0 duplicates")
GOAL_LATENCY = "latency p99 <= mosquitto's at 5k and 50k msgs/s"
GOAL_REPORTED = "churn and subscriptions: reported vs mosquitto (no fixed target, show the ratio)"
GOALS = [GOAL_IDLE_CONN, GOAL_IDLE_DAEMON, GOAL_ROUTING, GOAL_THROUGHPUT, GOAL_LATENCY]

IDLE_CONN = (GOAL_IDLE_CONN, "<= 350 B", at_most(350))
IDLE_DAEMON = (GOAL_IDLE_DAEMON, "<= 5 MB", at_most(MB_KIB))
CPU_02 = (GOAL_THROUGHPUT, "<= 0.2x mosquitto", times_theirs(0.2))
NO_LOSS = (GOAL_THROUGHPUT, "0", zero)
P99 = (GOAL_LATENCY, "<= mosquitto", times_theirs(1.0))
REPORTED = (GOAL_REPORTED, "none: the ratio", None)


def routing_targets(rate):
    # The SEQPACKET floor row is the machine's limit, shown next to the rows; it has no target.
    return lambda scenario, metric: None if "floor" in scenario else {
        "msgs_per_s": (GOAL_ROUTING, f">= {rate:,} msgs/s", at_least(rate)),
        "lost": (GOAL_ROUTING, "0", zero)}.get(metric)


# --- sections ----------------------------------------------------------------------------------

class Run:
    """One invocation of a bench: its arguments (full and quick) and a scenario label prefix."""

    def __init__(self, bench, args, quick, label="", targets=None):
        self.bench, self.args, self.quick, self.label = bench, args, quick, label
        self.targets = targets or (lambda scenario, metric: None)


class Section:
    def __init__(self, key, title, text, metrics, runs):
        self.key, self.title, self.text, self.metrics, self.runs = key, title, text, metrics, runs
        self.rows = []      # (scenario, broker, metrics, note, targets) of every measured run
        self.problems = []  # "not run: ..." and exit statuses
        self.seconds = 0.0


def sections(multicore_supported):
    thr = lambda s, m: {"broker_us_per_msg": CPU_02, "lost": NO_LOSS,
                        "duplicates": NO_LOSS}.get(m)
    lat = lambda s, m: P99 if m == "p99_us" else None
    churn = lambda s, m: REPORTED if m in ("cycles_per_s", "broker_us_per_cycle") else None
    subs = lambda s, m: REPORTED if m in ("msgs_per_s", "broker_us_per_msg") else None

    def memory(scenario, metric):
        if "idle connections" in scenario and metric == "bytes_per_connection":
            return IDLE_CONN
        if "idle daemon" in scenario and metric in ("anon_kib", "pss_kib", "private_kib"):
            return IDLE_DAEMON
        return None

    multicore_runs = []
    if multicore_supported:
        for cpus, label in (("0", "1 CPU: "), ("0,1", "2 CPUs: ")):
            multicore_runs.append(Run(
                "scenario_compare", ["throughput", "--only", "1->8", "--broker-cpus", cpus],
                ["throughput", "--only", "1->8 QoS0 64 B", "--broker-cpus", cpus, "--runs", "1",
                 "--messages", "2000"], label))
    return [
        Section("throughput", "Throughput",
                "1->1, 8->1, 1->8 and 100->100 x QoS 0/1/2 x 64 B/4 KB; publishers at most 1000 "
                "messages ahead of their subscribers. broker_us_per_msg: broker CPU per delivered "
                "message.",
                ["msgs_per_s", "broker_us_per_msg", "loadgen_us_per_msg", "lost", "duplicates"],
                [Run("scenario_compare", ["throughput"],
                     ["throughput", "--runs", "1", "--messages", "2000"], targets=thr)]),
        Section("latency", "Latency",
                "1->1, 64 B, fixed publish rate; end-to-end latency from the send time carried "
                "in the payload.",
                ["p50_us", "p99_us", "max_us", "lost"],
                [Run("scenario_compare", ["latency"],
                     ["latency", "--runs", "1", "--seconds", "1.5"], targets=lat)]),
        Section("churn", "Connection churn",
                "Each loop: TCP connect, CONNECT, CONNACK, one 64 B QoS 0 PUBLISH, DISCONNECT, "
                "close (KubeEdge's mapper template); one wildcard subscriber counts the data "
                "points.",
                ["cycles_per_s", "broker_us_per_cycle", "loadgen_us_per_msg", "lost"],
                [Run("churn_compare", ["churn"], ["churn", "--seconds", "1", "--runs", "1"],
                     targets=churn)]),
        Section("subscriptions", "Subscriptions",
                "N subscriptions on 100 clients (70 % exact, 20 % +, 10 % #), then QoS 0 "
                "messages matching one or two each; msgs_per_s and broker_us_per_msg count "
                "published messages, rss_kib is read after subscribing.",
                ["subscribe_seconds", "rss_kib", "msgs_per_s", "broker_us_per_msg", "delivered",
                 "lost"],
                [Run("churn_compare", ["subscriptions"],
                     ["subscriptions", "--counts", "1000,10000", "--messages", "20000",
                      "--runs", "1"], targets=subs)]),
        Section("memory", "Memory",
                "Idle connections: RssAnon growth per connection. A count that the machine's "
                "descriptor limit cannot hold is not run and stays unmet; the most the limit "
                "holds runs in its place, to show how far the cost per connection holds. Idle "
                "daemon: the whole eventbus daemon at its default configuration against an idle "
                "mosquitto.",
                ["bytes_per_connection", "anon_kib", "pss_kib", "private_kib", "rss_kib"],
                [Run("memory_compare", ["--only", "cd", "--idle", "10000,50000"],
                     ["--only", "cd", "--idle", "2000"], targets=memory)]),
        Section("routing", "MQTT -> bus routing",
                "Device publishers -> a whole node's routing into a counting twin module "
                "(in-process, or remote over the SEQPACKET module socket: one message per "
                "packet as beehive frames them, or batched packets for a module that registers "
                "with \"batch\": true) vs mosquitto with one subscriber. broker_us_per_msg: the "
                "node loop's CPU; loadgen_us_per_msg: the publishers' threads; "
                "counter_us_per_msg: the counting side's own thread (the remote twin module; "
                "mosquitto's subscriber). \"remote: SEQPACKET floor\" is this machine's limit "
                "for the one-message-per-packet rows, measured in the same run: bare packets of "
                "a routed message's size between two threads that do nothing else (its "
                "broker_us_per_msg is the sender's CPU, counter_us_per_msg the receiver's). "
                "Where a routed message's time goes: [ARCHITECTURE.md]"
                "(ARCHITECTURE.md#where-a-routed-messages-time-goes).",
                ["msgs_per_s", "broker_us_per_msg", "loadgen_us_per_msg", "counter_us_per_msg",
                 "lost"],
                [Run("routing_compare", ["--runs", "3"], ["--messages", "20000"], "in-process: ",
                     routing_targets(1_000_000)),
                 Run("routing_compare", ["--twin", "remote", "--runs", "3"],
                     ["--twin", "remote", "--messages", "20000"], "remote: ",
                     routing_targets(500_000)),
                 Run("routing_compare", ["--twin", "remote-batched", "--runs", "3"],
                     ["--twin", "remote-batched", "--messages", "20000"], "remote batched: ",
                     routing_targets(500_000))]),
        Section("multicore", "Multicore",
                "1->8 fan-out with the broker allowed one CPU, then two (the load generator "
                "shares the second). Why the daemon runs one event loop, and what a loop per "
                "core would take on a 16-core box: [ARCHITECTURE.md]"
                "(ARCHITECTURE.md#one-loop-and-what-more-cores-would-take)." if multicore_supported
                else
                "scenario_compare has no --broker-cpus: the daemon runs one event loop; these are "
                "the 1->8 rows of the throughput section, broker on one CPU.",
                ["msgs_per_s", "broker_us_per_msg", "lost"], multicore_runs),
    ]


# --- building and running ----------------------------------------------------------------------

def cache_value(build, key):
    cache = build / "CMakeCache.txt"
    if not cache.exists():
        return None
    m = re.search(rf"^{key}:\w+=(.*)$", cache.read_text(), re.M)
    return m.group(1).strip() if m else None


def build_targets(build, jobs):
    """Configures when needed, then builds each target on its own; returns {target: error}."""
    if cache_value(build, "EBUS_BUILD_BENCH") != "ON" or \
            cache_value(build, "CMAKE_BUILD_TYPE") != "Release":
        try:
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
                            "-DEBUS_BUILD_BENCH=ON", "-DCMAKE_BUILD_TYPE=Release",
                            "-DEBUS_BUILD_TESTS=OFF"], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            return {t: f"cmake failed ({e})" for t in TARGETS}
    errors = {}
    for target in TARGETS:
        print(f"[build] {target}", file=sys.stderr, flush=True)
        r = subprocess.run(["ninja", "-C", str(build), f"-j{jobs}", target],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            tail = [l for l in r.stdout.splitlines() if l.strip()][-1:]
            errors[target] = "build failed" + (f" ({tail[0][:120]})" if tail else "")
    return errors


def run_bench(binary, args, json_path, log_path, timeout):
    """Runs one bench in its own process group (so its brokers go too on a timeout)."""
    cmd = [str(binary)] + args + ["--json", str(json_path)]
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            status = None
    return status, time.monotonic() - started


def read_rows(json_path):
    rows = []
    if json_path.exists():
        for line in json_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a timeout
    return rows


def last_line(log_path):
    lines = [l for l in log_path.read_text(errors="replace").splitlines() if l.strip()]
    return lines[-1][:200] if lines else "no output"


def run_section(section, args, bench_dir, build_errors, tmp, timeout):
    for n, run in enumerate(section.runs):
        binary = bench_dir / run.bench
        if run.bench in build_errors or not binary.exists():
            why = build_errors.get(run.bench, f"{binary} is not built")
            section.problems.append(f"{run.label}not run: {why}")
            continue
        json_path = tmp / f"{section.key}-{n}.jsonl"
        log_path = tmp / f"{section.key}-{n}.log"
        bench_args = run.quick if args.quick else run.args
        print(f"[{section.key}] {run.bench} {shlex.join(bench_args)}", file=sys.stderr, flush=True)
        status, seconds = run_bench(binary, bench_args, json_path, log_path, timeout)
        section.seconds += seconds
        rows = read_rows(json_path)
        print(f"[{section.key}] {len(rows)} results in {seconds:.0f} s, status {status}",
              file=sys.stderr, flush=True)
        if status is None:
            section.problems.append(f"{run.label}timed out after {timeout} s"
                                    + ("" if rows else "; not run: no results"))
        elif status != 0 and not rows:
            section.problems.append(f"{run.label}not run: exited with status {status}: "
                                    f"{last_line(log_path)}")
        elif status != 0:
            section.problems.append(f"{run.label}exited with status {status} "
                                    f"({last_line(log_path)})")
        for row in rows:
            section.rows.append((run.label + row.get("scenario", "?"), row.get("broker"),
                                 row.get("metrics", {}), row.get("note", ""), run.targets))


# --- the document ------------------------------------------------------------------------------

def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def medians(section):
    """{scenario: {broker: {metric: median}}}, and (scenario, targets) in the order first seen."""
    values, order = {}, []
    for scenario, broker, metrics, _, targets in section.rows:
        if scenario not in values:
            values[scenario] = {}
            order.append((scenario, targets))
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                values[scenario].setdefault(broker, {}).setdefault(k, []).append(v)
    med = {s: {b: {k: statistics.median(v) for k, v in m.items()} for b, m in bs.items()}
           for s, bs in values.items()}
    return med, order


def cell(text):
    return text.replace("|", "\\|")


def section_table(section, verdicts):
    med, order = medians(section)
    lines = ["| scenario | metric | eventbus | mosquitto | ratio | target | met? |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for scenario, targets in order:
        ours_all = med[scenario].get("eventbus", {})
        theirs_all = med[scenario].get("mosquitto", {})
        if not ours_all and not theirs_all:
            # Only a note came back (the run could not be made here): a target it stands for
            # counts as not met, so that the summary never reads as if it had been measured.
            for metric in section.metrics:
                target = targets(scenario, metric)
                if target and target[2] is not None:
                    verdicts.setdefault(target[0], []).append(False)
                    lines.append(f"| {cell(scenario)} | {metric} | not run | not run | - | "
                                 f"{target[1]} | **no**: not run (see the notes) |")
                    break
            continue
        for metric in section.metrics:
            ours, theirs = ours_all.get(metric), theirs_all.get(metric)
            if ours is None and theirs is None:
                continue
            ratio = f"{ours / theirs:.2f}x" if ours is not None and theirs else "-"
            target = targets(scenario, metric)
            text, met = "-", "-"
            if target:
                goal, text, check = target
                if check is not None and ours is not None:
                    ok = check(ours, theirs)
                    if ok is not None:
                        met = "yes" if ok else "**no**"
                        verdicts.setdefault(goal, []).append(ok)
            lines.append(f"| {cell(scenario)} | {metric} | {fmt(ours)} | {fmt(theirs)} | {ratio} | "
                         f"{text} | {met} |")
    return lines


def machine():
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        out = subprocess.run([MOSQUITTO, "-h"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True).stdout
        mosquitto = out.splitlines()[0].strip() if out else "unknown"
    except OSError:
        mosquitto = "not found"
    return model, mosquitto


def compiler(build):
    cxx = cache_value(build, "CMAKE_CXX_COMPILER")
    if not cxx:
        return "unknown"
    try:
        out = subprocess.run([cxx, "--version"], stdout=subprocess.PIPE, text=True).stdout
        return out.splitlines()[0].strip()
    except (OSError, IndexError):
        return cxx


def write_document(out, args, all_sections, build):
    model, mosquitto = machine()
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["/usr/bin/python3", "bench/performance_report.py"] + sys.argv[1:])
    doc = ["# Performance: eventbus vs mosquitto", ""]
    if args.quick:
        doc += ["**Quick run**: small counts and one run per bench, a smoke test of the report "
                "itself. These numbers are not measurements.", ""]
    doc += ["Generated by", "", "```sh", command, "```", "",
            "| machine | |", "| --- | --- |",
            f"| CPU | {model} |", f"| cores | {cores} online, {usable} usable by the benches |",
            f"| kernel | {platform.release()} |", f"| mosquitto | {mosquitto} |",
            f"| compiler | {compiler(build)} |", f"| date | {now} |", "",
            "eventbus is `bench/broker_server` (the embedded broker at the daemon defaults, memory "
            "budget included) unless a section says otherwise; mosquitto runs with one loopback "
            "listener and every limit at its default. Both start fresh for every run, alternating. "
            "Where the machine has two CPUs or more the benches pin the broker to one and the load "
            "generator to another (the notes say so). Every number is the "
            "median over the runs; ratio is eventbus / mosquitto (below 1: eventbus uses less, "
            "or is slower where the metric is a rate).", ""]
    verdicts = {}
    body = []
    for s in all_sections:
        body += [f"## {s.title}", ""] + ([s.text, ""] if s.text else [])
        runs = {b: sum(1 for r in s.rows if r[1] == b) for b in ("eventbus", "mosquitto")}
        if s.rows:
            scenarios = len({r[0] for r in s.rows})
            body += [f"{runs['eventbus']} eventbus and {runs['mosquitto']} mosquitto runs over "
                     f"{scenarios} scenarios; the bench took {s.seconds:.0f} s.", ""]
            body += section_table(s, verdicts) + [""]
        if not s.rows and not s.problems:
            s.problems.append("not run: no results")
        body += [f"- {p}" for p in s.problems] + ([""] if s.problems else [])
        notes = sorted({r[3] for r in s.rows if r[3]})
        if notes:
            body += ["Notes from the runs:", ""] + [f"- {cell(n)}" for n in notes[:12]]
            if len(notes) > 12:
                body += [f"- ... and {len(notes) - 12} more"]
            body += [""]
    doc += ["## Targets", "", "| target | rows that meet it |", "| --- | --- |"]
    for goal in GOALS:
        v = verdicts.get(goal)
        doc.append(f"| {goal} | " + (f"{sum(v)} of {len(v)}" if v else "not measured") + " |")
    doc += [f"| {GOAL_REPORTED} | see the ratios |", "",
            "A row meets its target when eventbus's median does (MB = 10^6 bytes); 0 lost and 0 "
            "duplicates are eventbus's counts.", ""]
    missing = [f"{s.title}: {p}" for s in all_sections for p in s.problems]
    if missing:
        doc += ["Not run or incomplete:", ""] + [f"- {m}" for m in missing] + [""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(doc + body).rstrip() + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", required=True, help="build directory (configured if needed)")
    p.add_argument("--quick", action="store_true", help="small counts, one run: a smoke test")
    p.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    p.add_argument("--jobs", type=int, default=2, help="ninja -j (default 2)")
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--timeout", type=int, help="seconds per bench run (default 1800, quick 600)")
    p.add_argument("--keep", help="write each bench's JSON lines and output here (default: a "
                   "temporary directory, removed)")
    args = p.parse_args()
    build = Path(args.build).resolve()
    timeout = args.timeout or (600 if args.quick else 1800)
    build_errors = {} if args.no_build else build_targets(build, args.jobs)
    bench_dir = build / "bench"
    scenario_bin = bench_dir / "scenario_compare"
    multicore = scenario_bin.exists() and b"--broker-cpus" in scenario_bin.read_bytes()
    all_sections = sections(multicore)
    with tempfile.TemporaryDirectory(prefix="ebus-perf-report-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for s in all_sections:
            if s.key == "multicore" and not multicore:
                continue
            run_section(s, args, bench_dir, build_errors, work, timeout)
    if not multicore:
        # One event loop: the 1-CPU numbers are the throughput section's 1->8 rows.
        thr, mc = all_sections[0], all_sections[-1]
        mc.rows = [r[:4] + (lambda s, m: None,) for r in thr.rows if r[0].startswith("1->8")]
        if not scenario_bin.exists():
            mc.text = ""
            mc.problems.append("not run: scenario_compare is not built")
        elif not mc.rows:
            mc.problems.append("not run: no 1->8 throughput results")
    out = Path(args.out)
    write_document(out, args, all_sections, build)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
