#!/usr/bin/env python3
"""Memory per idle connection: atoll's echo server beside nginx.

For each server: start it on one core (CPU 0, one loop / one worker), warm it
up with a few connections, read the serving process's RSS, open N idle TCP
connections (default 10,000, from source addresses 127.0.0.2-127.0.0.9), make
sure the server has accepted every one, read the RSS again and report
(RSS growth) / N in bytes. Only user-space memory shows in RSS; the kernel's
socket memory (a few KB per connection on each side) does not.

Two ways to make a connection idle:

  roundtrip  (default) one exchange, then silence: a byte echoed by atoll, one
             `GET /` answered by nginx and left in keep-alive. This is the
             steady state of an idle keep-alive connection.
  silent     connect and send nothing; the script waits until the server
             holds N more descriptors (/proc/PID/fd).

The RSS is also read at N/2, so the marginal cost between N/2 and N (free of
warm-up residue and one-off allocations) is reported beside the average.

  bench/idle_memory.py                          # atoll and nginx, roundtrip
  bench/idle_memory.py --mode both --servers atoll
  bench/idle_memory.py --echo build/release/examples/echo --connections 10000
  bench/idle_memory.py --attach PID:PORT --connections 2000 --hold 2   # see bench/README.md

The client (this process) is pinned to CPU 1 and raises its descriptor soft
limit to the hard limit (20,000 here): N must stay below that.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


# --- /proc --------------------------------------------------------------------

def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def memory(pid):
    """VmRSS and RssAnon of a process, in bytes."""
    return {"rss": status_kb(pid, "VmRSS") * 1024, "anon": status_kb(pid, "RssAnon") * 1024}


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append(int(entry))
    return out


def stop(proc, sig=signal.SIGTERM, timeout=15):
    """Stops a process this script started, by its PID."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- servers --------------------------------------------------------------------

class Atoll:
    name = "atoll"

    def __init__(self, args):
        self.args = args
        self.proc = None

    def start(self):
        cmd = ["taskset", "-c", str(self.args.server_cpu), self.args.echo, "--port", "0", "--loops", "1"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            stop(self.proc)
            raise RuntimeError(f"echo did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.pid = self.proc.pid
        self.command = " ".join(cmd)

    def ping(self, sock):
        sock.sendall(b"x")
        if sock.recv(1) != b"x":
            raise RuntimeError("echo answered wrong")

    def stop(self):
        stop(self.proc)


class Attached(Atoll):
    """An echo server started by someone else (e.g. under heaptrack): measured,
    never started or stopped."""
    name = "attached"

    def start(self):
        pid, _, port = self.args.attach.partition(":")
        self.pid, self.port = int(pid), int(port)
        self.command = f"(attached to pid {self.pid}, port {self.port})"
        self.proc = None

    def stop(self):
        pass


NGINX_CONF = """\
worker_processes 1;
worker_cpu_affinity {mask};
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections {worker_connections};
}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 "ok\\n";
        }}
    }}
}}
"""


class Nginx:
    name = "nginx"

    def __init__(self, args, worker_connections=20000):
        self.args = args
        self.proc = None
        self.dir = None
        self.worker_connections = worker_connections

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="atoll-bench-nginx-")
        os.chmod(self.dir, 0o755)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, mask=bin(1 << self.args.server_cpu)[2:],
                                      worker_connections=self.worker_connections))
        cmd = ["taskset", "-c", str(self.args.server_cpu), self.args.nginx, "-p", self.dir, "-c", conf]
        self.command = " ".join(cmd)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx did not start: " + self.proc.stderr.read())
            workers = children(self.proc.pid)
            if workers:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    self.pid = workers[0]
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not come up")

    def ping(self, sock):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("nginx closed the connection")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            body += sock.recv(4096)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"nginx answered {head[:40]!r}")

    def stop(self):
        if self.proc:
            stop(self.proc, signal.SIGQUIT)  # graceful; SIGTERM would be "fast shutdown"
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- the measurement ----------------------------------------------------------------

def open_connection(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)  # pick the port at connect()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def wait_for_fds(pid, target, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = fd_count(pid)
        if n >= target:
            return n
        time.sleep(0.05)
    raise RuntimeError(f"server holds {fd_count(pid)} descriptors, expected {target}")


def measure(server, args, mode):
    server.start()
    socks = []
    try:
        # Warm-up: a few connections with one exchange each, then closed, so
        # pools and lazily created structures exist before the baseline.
        for i in range(args.warmup):
            s = open_connection(server.port, "127.0.0.1")
            server.ping(s)
            s.close()
        time.sleep(args.settle)
        base_fds = fd_count(server.pid)
        before = memory(server.pid)
        sources = [f"127.0.0.{i}" for i in range(2, 10)]
        started = time.time()
        n = args.connections
        half_n = n // 2
        half = None
        while len(socks) < n:
            # Batches end at N/2 and at N, where the RSS is read.
            end = min(len(socks) + args.batch, half_n if len(socks) < half_n else n)
            batch = [open_connection(server.port, sources[i % len(sources)]) for i in range(len(socks), end)]
            if mode == "roundtrip":
                for s in batch:
                    server.ping(s)
            else:
                wait_for_fds(server.pid, base_fds + len(socks) + len(batch))
            socks.extend(batch)
            if len(socks) == half_n:
                wait_for_fds(server.pid, base_fds + half_n)
                time.sleep(args.settle)
                half = memory(server.pid)
        held = wait_for_fds(server.pid, base_fds + n)
        setup_s = time.time() - started
        time.sleep(args.settle)
        after = memory(server.pid)
        alive = server.proc is None or server.proc.poll() is None
        if args.hold:
            time.sleep(args.hold)
        result = {
            "server": server.name,
            "mode": mode,
            "command": server.command,
            "connections": n,
            "server_fds": held - base_fds,
            "rss_before": before["rss"],
            "rss_after": after["rss"],
            "bytes_per_conn": (after["rss"] - before["rss"]) / n,
            "anon_bytes_per_conn": (after["anon"] - before["anon"]) / n,
            "marginal_bytes_per_conn": (after["rss"] - half["rss"]) / (n - half_n) if half else float("nan"),
            "setup_s": round(setup_s, 2),
            "alive": alive,
        }
        return result
    finally:
        for s in socks:
            s.close()
        server.stop()


def nginx_slot_cost(args):
    """nginx allocates and touches its connection and event structures for all
    worker_connections at start, so they sit in the baseline, not in the
    growth. Their size: the worker's RSS at 20,000 slots minus at 1,024."""
    rss = {}
    for wc in (1024, 20000):
        server = Nginx(args, wc)
        server.start()
        try:
            time.sleep(args.settle)
            rss[wc] = memory(server.pid)["rss"]
        finally:
            server.stop()
    per_slot = (rss[20000] - rss[1024]) / (20000 - 1024)
    print(f"nginx  worker RSS at start: {rss[1024] / 1024:.0f} KiB with 1,024 worker_connections, "
          f"{rss[20000] / 1024:.0f} KiB with 20,000: {per_slot:.0f} B preallocated per slot", flush=True)
    return per_slot


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(REPO, "build", "release"),
                   help="build directory holding examples/echo (default: build/release)")
    p.add_argument("--echo", help="echo binary (default: BUILD/examples/echo)")
    p.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    p.add_argument("--servers", default="atoll,nginx", help="comma-separated: atoll, nginx")
    p.add_argument("--mode", default="roundtrip", choices=["roundtrip", "silent", "both"])
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--batch", type=int, default=250, help="connections opened before each check")
    p.add_argument("--warmup", type=int, default=8, help="warm-up connections before the baseline")
    p.add_argument("--settle", type=float, default=0.5, help="seconds to wait before reading RSS")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--attach", metavar="PID:PORT",
                   help="measure an echo server that is already running (e.g. under heaptrack) instead")
    p.add_argument("--hold", type=float, default=0,
                   help="seconds to keep the connections open after the last reading")
    p.add_argument("--nginx-slots", action="store_true",
                   help="also measure what nginx preallocates per worker_connections slot")
    p.add_argument("--json", action="store_true", help="print one JSON object per measurement")
    args = p.parse_args()
    args.echo = args.echo or os.path.join(args.build, "examples", "echo")

    os.sched_setaffinity(0, {args.client_cpu})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.connections + 100 > hard:
        sys.exit(f"idle_memory: {args.connections} connections need more than the {hard} descriptors allowed")

    servers = {"atoll": Atoll, "nginx": Nginx, "attached": Attached}
    if args.attach:
        args.servers = "attached"
    modes = ["roundtrip", "silent"] if args.mode == "both" else [args.mode]
    results = []
    for _ in range(args.rounds):
        for mode in modes:
            for name in args.servers.split(","):
                r = measure(servers[name](args), args, mode)
                results.append(r)
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    print(f"{r['server']:6} {r['mode']:9} {r['connections']} conns: RSS {r['rss_before'] / 1024:.0f} KiB"
                          f" -> {r['rss_after'] / 1024:.0f} KiB = {r['bytes_per_conn']:.0f} B/conn"
                          f" (anon {r['anon_bytes_per_conn']:.0f} B, marginal {r['marginal_bytes_per_conn']:.0f} B;"
                          f" server held {r['server_fds']}, set up in {r['setup_s']} s)", flush=True)
                    print(f"       server: {r['command']}", flush=True)
    if args.nginx_slots:
        nginx_slot_cost(args)
    if args.rounds > 1 and not args.json:
        print("median B/conn:")
        for name in args.servers.split(","):
            for mode in modes:
                v = sorted(r["bytes_per_conn"] for r in results if r["server"] == name and r["mode"] == mode)
                print(f"  {name:6} {mode:9} {v[len(v) // 2]:.0f}  (all: {', '.join(f'{x:.0f}' for x in v)})")


if __name__ == "__main__":
    main()
