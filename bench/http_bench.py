#!/usr/bin/env python3
"""HTTP/1.1 benchmark: atoll side by side with nginx, h2o and lighttpd.

Every server runs on CPU 0 with one worker (or thread); wrk runs on CPU 1.
Servers are measured in turn, A B C D, for several rounds, so that drift on
this machine hits all of them alike. Reported per case and server: req/s,
p99 latency, server CPU per request, requests per server-CPU-second (the
figure that matters when wrk saturates its own core first), syscalls per
request (strace -c, a separate short run), and the RSS of the serving
process; then ratios of atoll against each reference.

Servers `floor` and `floor-uring` (bench/http_floor) answer every request
head with a canned response and do nothing else: the least any server can
cost here, with epoll and with io_uring (plaintext and file1k cases only).

Cases: plaintext "Hello World!" (nginx `return 200`; h2o and lighttpd serve
a 12-byte file, having no such directive), a 1 KiB file, a 256 KiB file; at
32 and 256 connections; and plaintext pipelined 16 deep. With --access-log
every server writes an access log (the application-layer benchmark).

  bench/http_bench.py                      # everything, 3 rounds of 5 s
  bench/http_bench.py --cases file1k --conns 256 --rounds 1 --duration 3
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU, CLIENT_CPU = "0", "1"
PORTS = {"atoll": 18100, "nginx": 18101, "h2o": 18102, "lighttpd": 18103, "atoll-host": 18105}
# The floors (bench/http_floor): a canned answer per request head, with epoll
# or io_uring; one process per answer size (12 bytes, 1 KiB).
FLOORS = {"floor": "epoll", "floor-uring": "uring"}
FLOOR_PORTS = {("floor", 12): 18106, ("floor", 1024): 18107,
               ("floor-uring", 12): 18108, ("floor-uring", 1024): 18109}
ATOLL_HELLO_PORT = 18104

PIPELINE_LUA = """
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
"""


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Servers:
    def __init__(self, work, build, access_log, only):
        self.work, self.build, self.access_log = work, build, access_log
        self.procs, self.pids = {}, {}
        self.only = only

    def docroot(self):
        root = os.path.join(self.work, "www")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "plaintext"), "w") as f:
            f.write("Hello World!")
        for name, size in (("1k.bin", 1024), ("256k.bin", 256 * 1024)):
            with open(os.path.join(root, name), "wb") as f:
                f.write(os.urandom(size))
        return root

    def start(self, name, argv, port, serving_pid=None):
        p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.work, name + ".err"), "w"),
                             start_new_session=True)
        self.procs[name] = p
        wait_port(port)
        pid = p.pid
        if serving_pid:
            pid = serving_pid(p.pid)
        self.pids[name] = pid
        return pid

    def start_all(self):
        root = self.docroot()
        w, logdir = self.work, os.path.join(self.work, "logs")
        os.makedirs(logdir, exist_ok=True)
        os.chmod(logdir, 0o777)  # workers that dropped privileges write their logs here
        log = self.access_log
        if "atoll" in self.only:
            atoll = os.path.join(self.build, "apps/atoll/atoll")
            # A supervising master and one worker: the worker serves.
            self.start("atoll", [atoll, "serve", "--root", root, "--listen", f"127.0.0.1:{PORTS['atoll']}",
                                 "--workers", "1", "--loops", "1", "--access-log",
                                 os.path.join(logdir, "atoll.log") if log else "off"], PORTS["atoll"],
                       serving_pid=lambda pid: (children(pid) or [pid])[0])
            hello = os.path.join(self.build, "examples/hello")
            self.start("atoll-hello", [hello, "--port", str(ATOLL_HELLO_PORT), "--loops", "1",
                                       "--access-log", os.path.join(logdir, "hello.log") if log else "off"],
                       ATOLL_HELLO_PORT)
        if "atoll-host" in self.only:
            # The product: the same files published as a site, served by
            # host name from the content store (one worker, one loop).
            atoll = os.path.join(self.build, "apps/atoll/atoll")
            data = os.path.join(w, "host-data")
            subprocess.run([atoll, "publish", root, "--site", "bench", "--data", data], check=True,
                           capture_output=True)
            empty = os.path.join(w, "no-demo")
            os.makedirs(empty, exist_ok=True)
            self.start("atoll-host", [atoll, "serve", "--data", data, "--demo-sites", empty,
                                      "--listen", f"127.0.0.1:{PORTS['atoll-host']}", "--admin-listen", "off",
                                      "--workers", "1", "--loops", "1", "--access-log",
                                      os.path.join(logdir, "host.log") if log else "off"], PORTS["atoll-host"],
                       serving_pid=lambda pid: (children(pid) or [pid])[0])
        for name, mode in FLOORS.items():
            if name in self.only:
                floor = os.path.join(self.build, "bench/http_floor")
                for size in (12, 1024):
                    port = FLOOR_PORTS[(name, size)]
                    self.start(f"{name}-{size}", [floor, "--port", str(port), "--mode", mode,
                                                  "--size", str(size)], port)
        if "nginx" in self.only:
            conf = os.path.join(w, "nginx.conf")
            with open(conf, "w") as f:
                f.write(f"""
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/nginx.error.log;
events {{ worker_connections 4096; }}
http {{
  access_log {os.path.join(logdir, 'nginx.log') if log else 'off'};
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  types {{ text/plain txt; }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{PORTS['nginx']} reuseport;
    root {root};
    location = /plaintext {{ default_type text/plain; return 200 "Hello World!"; }}
  }}
}}
""")
            self.start("nginx", ["nginx", "-c", conf, "-p", w], PORTS["nginx"],
                       serving_pid=lambda pid: (children(pid) or [pid])[0])
        if "h2o" in self.only:
            conf = os.path.join(w, "h2o.conf")
            with open(conf, "w") as f:
                f.write(f"""
num-threads: 1
listen:
  host: 127.0.0.1
  port: {PORTS['h2o']}
file.send-compressed: OFF
error-log: {w}/h2o.error.log
{'access-log: ' + os.path.join(logdir, 'h2o.log') if log else ''}
hosts:
  default:
    paths:
      /:
        file.dir: {root}
""")
            self.start("h2o", ["h2o", "-c", conf], PORTS["h2o"])
        if "lighttpd" in self.only:
            conf = os.path.join(w, "lighttpd.conf")
            mods = '"mod_accesslog"' if log else ""
            with open(conf, "w") as f:
                f.write(f"""
server.document-root = "{root}"
server.port = {PORTS['lighttpd']}
server.bind = "127.0.0.1"
server.max-worker = 0
server.max-keep-alive-requests = 100000
server.network-backend = "sendfile"
server.stat-cache-engine = "simple"
server.errorlog = "{w}/lighttpd.error.log"
server.modules = ( {mods} )
{'accesslog.filename = "' + os.path.join(logdir, 'lighttpd.log') + '"' if log else ''}
mimetype.assign = ( "" => "application/octet-stream" )
""")
            self.start("lighttpd", ["lighttpd", "-D", "-f", conf], PORTS["lighttpd"])

    def stop_all(self):
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def target(server, case):
    """(pid key, port, path) for a server and a case."""
    if server == "atoll":
        if case in ("plaintext", "pipelined"):
            return "atoll-hello", ATOLL_HELLO_PORT, "/plaintext"
        return "atoll", PORTS["atoll"], "/1k.bin" if case == "file1k" else "/256k.bin"
    if server in FLOORS:
        if case not in ("plaintext", "file1k"):
            return None
        size = 12 if case == "plaintext" else 1024
        return f"{server}-{size}", FLOOR_PORTS[(server, size)], "/"
    path = {"plaintext": "/plaintext", "pipelined": "/plaintext", "file1k": "/1k.bin", "file256k": "/256k.bin"}[case]
    return server, PORTS[server], path


def parse_latency(text, label):
    m = re.search(rf"^\s*{label}\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return None
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(port, path, conns, duration, lua):
    # Every request names the benchmark site; servers without virtual hosts ignore it.
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
            "-H", "Host: bench.localhost"]
    if lua:
        argv += ["-s", lua]
    argv.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_err = re.search(r"Socket errors: (.*)", out)
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p99_ms": parse_latency(out, "99%"), "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock_err.group(1).strip() if sock_err else ""}


def count_syscalls(pid, port, path, conns, lua, seconds=2):
    """Syscalls per request: strace -c on the serving process during a short run."""
    out = tempfile.mktemp(suffix=".strace")
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # strace needs a moment to attach; nothing is measured before it does
    r = run_wrk(port, path, conns, seconds, lua)
    st.send_signal(signal.SIGINT)
    st.wait(timeout=30)
    calls = 0
    with open(out) as f:
        for line in f:
            m = re.match(r"\s*[0-9.]+\s+[0-9.]+\s+\d+\s+(\d+)\s+(\d+\s+)?(\w+)$", line)
            # ("total" is strace's own sum line: counting it doubled every figure.)
            if m and m.group(3) not in ("total", "futex", "restart_syscall", "rt_sigtimedwait", "epoll_wait",
                                        "epoll_pwait"):
                calls += int(m.group(1))
    os.unlink(out)
    return calls / max(r["requests"], 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--servers", default="atoll,nginx,h2o,lighttpd")
    ap.add_argument("--cases", default="plaintext,file1k,file256k,pipelined")
    ap.add_argument("--conns", default="32,256")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--access-log", action="store_true", help="every server writes an access log")
    ap.add_argument("--no-syscalls", action="store_true", help="skip the strace runs")
    ap.add_argument("--json", help="also write raw results here")
    a = ap.parse_args()
    servers = a.servers.split(",")
    work = tempfile.mkdtemp(prefix="atoll-bench-")
    os.chmod(work, 0o755)  # nginx and h2o drop to an unprivileged user when started as root
    lua = os.path.join(work, "pipeline.lua")
    with open(lua, "w") as f:
        f.write(PIPELINE_LUA)
    srv = Servers(work, a.build, a.access_log, servers)
    results = {}
    try:
        srv.start_all()
        combos = []
        for case in a.cases.split(","):
            for conns in ([256] if case == "pipelined" else [int(c) for c in a.conns.split(",")]):
                combos.append((case, conns))
        for rnd in range(a.rounds):
            for case, conns in combos:
                for server in servers:
                    if not target(server, case):
                        continue
                    key, port, path = target(server, case)
                    pid = srv.pids[key]
                    run_wrk(port, path, conns, 1, lua if case == "pipelined" else None)  # warm-up
                    c0 = cpu_ticks(pid)
                    r = run_wrk(port, path, conns, a.duration, lua if case == "pipelined" else None)
                    c1 = cpu_ticks(pid)
                    cpu_s = (c1 - c0) / os.sysconf("SC_CLK_TCK")
                    r["cpu_us_per_req"] = cpu_s * 1e6 / max(r["requests"], 1)
                    r["req_per_cpu_s"] = r["requests"] / cpu_s if cpu_s else float("nan")
                    results.setdefault((case, conns, server), []).append(r)
                    print(f"round {rnd + 1} {case:9} c={conns:<3} {server:8} {r['rps']:>9.0f} req/s "
                          f"p99 {r['p99_ms'] or 0:7.2f} ms  {r['cpu_us_per_req']:6.2f} us/req  "
                          f"{r['req_per_cpu_s']:>9.0f} req/cpu-s  errors {r['non2xx']} {r['socket_errors']}",
                          flush=True)
        syscalls = {}
        if not a.no_syscalls and shutil.which("strace"):
            for case, conns in combos:
                for server in servers:
                    if not target(server, case):
                        continue
                    key, port, path = target(server, case)
                    syscalls[(case, conns, server)] = count_syscalls(srv.pids[key], port, path, conns,
                                                                     lua if case == "pipelined" else None)
        rss = {s: rss_kb(srv.pids[target(s, "file1k")[0]]) for s in servers}  # (every server has file1k)
        if "atoll" in servers:
            rss["atoll-hello"] = rss_kb(srv.pids["atoll-hello"])
    finally:
        srv.stop_all()

    def median(xs):
        xs = sorted(x for x in xs if x == x)
        return xs[len(xs) // 2] if xs else float("nan")

    print()
    refs = [s for s in servers if not s.startswith("atoll") and s not in FLOORS]
    print(f"| case | conns | server | req/s | p99 ms | CPU µs/req | req per CPU-s | syscalls/req | RSS MB |"
          + "".join(f" ÷ {s} |" for s in refs))
    print("|---" * (9 + len(refs)) + "|")
    for case, conns in combos:
        for server in servers:
            if (case, conns, server) not in results:
                continue
            rs = results[(case, conns, server)]
            rpc = median(r["req_per_cpu_s"] for r in rs)
            sc = syscalls.get((case, conns, server))
            rkey = "atoll-hello" if server == "atoll" and case in ("plaintext", "pipelined") else server
            row = (f"| {case} | {conns} | {server} | {median(r['rps'] for r in rs):.0f} | "
                   f"{median(r['p99_ms'] or 0 for r in rs):.2f} | {median(r['cpu_us_per_req'] for r in rs):.2f} | "
                   f"{rpc:.0f} | {'' if sc is None else f'{sc:.2f}'} | {rss.get(rkey, 0) / 1024:.1f} |")
            for other in refs:
                if server.startswith("atoll") or server in FLOORS:
                    o = median(r["req_per_cpu_s"] for r in results[(case, conns, other)])
                    row += f" {rpc / o:.2f} |"
                else:
                    row += " |"
            print(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{k[0]}/{k[1]}/{k[2]}": v for k, v in results.items()}, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
