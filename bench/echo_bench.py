#!/usr/bin/env python3
"""Echo throughput, latency and server CPU per message.

Starts atoll's echo server pinned to CPU 0 with one loop, then runs
bench/echo_load (a one-thread epoll client) pinned to CPU 1: 100 connections,
each sending a 64-byte message, waiting for the whole echo and sending the
next, for a fixed window after a warm-up. Reports messages/s, latency
percentiles (µs) and the server's CPU time per message, read from
/proc/PID/stat (utime+stime) and /proc/PID/task/*/schedstat at the edges of
the window. With --servers atoll,floor the same load also runs against
bench/echo_floor (a minimal C-style epoll echo server), round by round
interleaved, as the floor to compare with.

On loopback each side pays for the TCP path of what it sends, so the client
costs about as much per message as the server: both cores usually run near
100 %, and messages/s is bounded by whichever is slower. Compare servers by
"server µs/msg" (CPU per message), which does not depend on that; the
"busy" columns say which side was saturated, and "other" how much of a core
the rest of the machine used meanwhile (above a few % the round was
disturbed and is run again).

  cmake --preset release && cmake --build --preset release --target echo echo_load echo_floor
  bench/echo_bench.py                                 # 3 rounds of 10 s
  bench/echo_bench.py --servers atoll,floor --rounds 3 --duration 10
  bench/echo_bench.py --servers atoll,floor --instructions   # callgrind count
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stop(proc, timeout=15):
    """Stops a process this script started, by its PID."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        stop(proc)
        sys.exit(f"echo_bench: {cmd[3]} did not start: {line!r}")
    return proc, line.rsplit(":", 1)[1].strip()


def row(label, r, note=""):
    return (f"{label:>12} {r['msgs_per_s']:>9.0f} {r['p50_us']:>8.1f} {r['p99_us']:>8.1f} {r['p999_us']:>9.1f} "
            f"{r['server_sched_us_per_msg']:>13.2f} {100 * r['server_busy']:>10.0f}% "
            f"{r['client_cpu_us_per_msg']:>13.2f} {100 * r['client_busy']:>10.0f}% "
            f"{100 * r['other_busy']:>5.0f}%{note}")


def run_load(load, port, pid, args, duration, warmup=0.0):
    cmd = ["taskset", "-c", args.client_cpu, load, "--port", port, "--connections", str(args.connections),
           "--size", str(args.size), "--duration", str(duration), "--warmup", str(warmup),
           "--server-pid", str(pid), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=warmup + duration + 60)
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit(f"echo_bench: echo_load failed ({out.returncode}): {out.stdout}{out.stderr}")
    return json.loads(out.stdout)


def instructions_per_message(name, cmd, load, args):
    """User-space instructions the server executes per message, counted by
    callgrind: deterministic, so it compares servers even on a busy machine.
    Two windows of different lengths are counted (callgrind_control -z, then
    -d); their difference cancels connection set-up and tear-down."""
    with tempfile.TemporaryDirectory(prefix="atoll-bench-cg-") as tmp:
        vg = ["taskset", "-c", args.server_cpu, "valgrind", "--tool=callgrind",
              f"--callgrind-out-file={tmp}/cg.out"] + cmd[3:]
        proc = subprocess.Popen(vg, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = proc.stdout.readline()
            if "listening on" not in line:
                sys.exit(f"echo_bench: {name} under callgrind did not start: {line!r}")
            port = line.rsplit(":", 1)[1].strip()
            run_load(load, port, proc.pid, args, 1)  # warm-up
            counts = []
            for duration in (2, 6):
                subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
                r = run_load(load, port, proc.pid, args, duration)
                before = set(os.listdir(tmp))
                subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
                dump = sorted(set(os.listdir(tmp)) - before)[-1]
                with open(os.path.join(tmp, dump)) as f:
                    ir = next(int(l.split()[1]) for l in f if l.startswith("summary:"))
                counts.append((r["messages"], ir))
        finally:
            stop(proc)
    (m1, i1), (m2, i2) = counts
    return (i2 - i1) / (m2 - m1), m2 - m1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(REPO, "build", "release"),
                   help="build directory holding examples/echo and bench/echo_{load,floor} "
                        "(default: build/release)")
    p.add_argument("--echo", help="echo binary (default: BUILD/examples/echo)")
    p.add_argument("--load", help="echo_load binary (default: BUILD/bench/echo_load)")
    p.add_argument("--floor", help="echo_floor binary (default: BUILD/bench/echo_floor)")
    p.add_argument("--servers", default="atoll", help="comma-separated: atoll, floor")
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--size", type=int, default=64, help="message size in bytes")
    p.add_argument("--duration", type=float, default=10, help="measurement window per round, seconds")
    p.add_argument("--warmup", type=float, default=2, help="warm-up before each window, seconds")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--loops", type=int, default=1, help="echo --loops")
    p.add_argument("--server-cpu", default="0", help="taskset list for the server")
    p.add_argument("--client-cpu", default="1", help="taskset list for the load generator")
    p.add_argument("--max-other", type=float, default=0.05,
                   help="a round in which the rest of the machine used more than this share of a core is "
                        "disturbed: it is reported but not counted, and run again")
    p.add_argument("--retries", type=int, default=4, help="how many disturbed rounds may be run again, in all")
    p.add_argument("--retry-wait", type=float, default=10,
                   help="seconds to wait before running a disturbed round again")
    p.add_argument("--instructions", action="store_true",
                   help="instead of timed rounds, count the server's user-space instructions per message "
                        "under callgrind (slow, but immune to other work on the machine)")
    p.add_argument("--json", action="store_true", help="print one JSON object per round")
    args = p.parse_args()
    binaries = {
        "atoll": args.echo or os.path.join(args.build, "examples", "echo"),
        "floor": args.floor or os.path.join(args.build, "bench", "echo_floor"),
    }
    load = args.load or os.path.join(args.build, "bench", "echo_load")
    names = args.servers.split(",")
    for path in [load] + [binaries[n] for n in names]:
        if not os.access(path, os.X_OK):
            sys.exit(f"echo_bench: {path} not found; build the echo, echo_load and echo_floor targets "
                     "(see bench/README.md)")

    if args.instructions:
        for n in names:
            cmd = ["taskset", "-c", args.server_cpu, binaries[n], "--port", "0"]
            if n == "atoll":
                cmd += ["--loops", str(args.loops)]
            ipm, msgs = instructions_per_message(n, cmd, load, args)
            print(f"{n}: {ipm:.0f} user-space instructions per message "
                  f"(callgrind, over {msgs} messages; server: valgrind --tool=callgrind {' '.join(cmd[3:])})",
                  flush=True)
        return

    servers = {}
    results = {n: [] for n in names}
    try:
        for n in names:
            cmd = ["taskset", "-c", args.server_cpu, binaries[n], "--port", "0"]
            if n == "atoll":
                cmd += ["--loops", str(args.loops)]
            servers[n] = start(cmd) + (cmd,)
        if not args.json:
            for n in names:
                print(f"server {n}:", " ".join(servers[n][2]))
            print("load:", "taskset -c", args.client_cpu, load, "--port PORT --connections", args.connections,
                  "--size", args.size, "--duration", args.duration, "--warmup", args.warmup,
                  "--server-pid PID --json")
            print(f"{'round':>12} {'msgs/s':>9} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} "
                  f"{'server µs/msg':>13} {'server busy':>11} {'client µs/msg':>13} {'client busy':>11} "
                  f"{'other':>6}")
        retries = args.retries
        for i in range(args.rounds):
            for n in names:
                proc, port, _ = servers[n]
                load_cmd = ["taskset", "-c", args.client_cpu, load, "--port", port,
                            "--connections", str(args.connections), "--size", str(args.size),
                            "--duration", str(args.duration), "--warmup", str(args.warmup),
                            "--server-pid", str(proc.pid), "--json"]
                while True:
                    out = subprocess.run(load_cmd, capture_output=True, text=True,
                                         timeout=args.warmup + args.duration + 60)
                    if out.returncode != 0 or not out.stdout.strip():
                        sys.exit(f"echo_bench: echo_load failed ({out.returncode}): {out.stdout}{out.stderr}")
                    r = json.loads(out.stdout)
                    r["server"] = n
                    r["disturbed"] = r["other_busy"] > args.max_other
                    counted = not r["disturbed"] or retries == 0
                    if args.json:
                        print(json.dumps(r), flush=True)
                    else:
                        note = "" if not r["disturbed"] else "  disturbed" if counted else "  disturbed: run again"
                        print(row(f"{n} {i + 1}", r, note), flush=True)
                    if counted:
                        results[n].append(r)
                        break
                    retries -= 1
                    time.sleep(args.retry_wait)
    finally:
        for proc, _, _ in servers.values():
            stop(proc)
    if args.rounds > 1 and not args.json:
        for n in names:
            med = {k: statistics.median(r[k] for r in results[n]) for k in results[n][0]
                   if isinstance(results[n][0][k], (int, float))}
            print(row(f"{n} median", med))
        for n in names:
            med = statistics.median(r["server_cpu_us_per_msg"] for r in results[n])
            print(f"{n}: server CPU per message from /proc/PID/stat (10 ms ticks), median {med:.2f} µs")


if __name__ == "__main__":
    main()
