"""Starts an atoll binary from $ATOLL_BUILD on a free port and stops it.

    with AtollProcess("http_probe", "--header-timeout-ms", "300") as srv:
        http.client.HTTPConnection("127.0.0.1", srv.port)

The binary is started with "--port 0" (or whatever listen argument the caller
passes); the port is read from the "listening on http://HOST:PORT" line it
prints. stop() sends SIGTERM and waits, and fails the test (AssertionError)
unless the server exited with the expected status (0 by default) and its log
holds no sanitizer report and no unexpected worker restart (check_log()).
"""

import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time

BUILD = os.environ.get("ATOLL_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build", "release"))
# The test certificates the build makes (tests/support/make_certs.sh).
CERTS = os.environ.get("ATOLL_TEST_CERTS", os.path.join(BUILD, "test-certs"))

# Where each binary lands in the build tree.
_LOCATIONS = {
    "hello": "examples/hello",
    "echo": "examples/echo",
    "daytime": "examples/daytime",
    "atoll": "apps/atoll/atoll",
    "http_probe": "tests/http_probe",
}

# Lines that mean a defect whatever the test asserted: a sanitizer's report
# (in the asan build every server is instrumented), or a worker the
# supervisor had to restart.
_DEFECTS = re.compile(rb"AddressSanitizer|LeakSanitizer|runtime error:|restarting it")


def check_log(name, text, allow_restarts=False):
    """Raises AssertionError if a server's log `text` (bytes) shows a defect."""
    for m in _DEFECTS.finditer(text):
        if allow_restarts and m.group(0) == b"restarting it":
            continue
        start = text.rfind(b"\n", 0, m.start()) + 1
        raise AssertionError(f"{name} logged a defect: {text[start:start + 2000].decode(errors='replace')}")


def run_atoll(*args, timeout=60):
    """Runs the `atoll` command line; returns the CompletedProcess (text),
    after failing on a defect in its output (check_log), whatever its status."""
    p = subprocess.run([binary("atoll"), *args], capture_output=True, text=True, timeout=timeout)
    check_log(f"atoll {args[0]}", (p.stdout + p.stderr).encode())
    return p


_LISTENING = re.compile(rb"listening on http://([0-9.]+|\[[0-9a-fA-F:]+\]):(\d+)")


def binary(name):
    """Absolute path of a built binary; raises if it is not built."""
    path = os.path.join(BUILD, _LOCATIONS.get(name, name))
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is not built (set ATOLL_BUILD to the build directory)")
    return os.path.abspath(path)


class AtollProcess:
    """One running server. `args` follow the binary's name; by default
    "--port 0" is appended (pass port_arg=None when args already choose)."""

    def __init__(self, name, *args, port_arg=("--port", "0"), start_timeout=10.0):
        self.name = name
        self.argv = [binary(name), *args, *(port_arg or ())]
        self.start_timeout = start_timeout
        self.proc = None
        self.host = None
        self.port = None
        self._stderr = None
        self._stdout = []
        self._reader = None
        self._stderr_text = b""

    # --- lifecycle -----------------------------------------------------------

    def start(self):
        # stderr goes to a file: a chatty server never blocks on a full pipe,
        # and a test can read the log afterwards.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._stderr)
        deadline = time.monotonic() + self.start_timeout
        seen = b""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name} did not say it was ready within "
                                       f"{self.start_timeout} s; stdout so far: {seen!r}; stderr: {self.stderr()!r}")
                if not sel.select(left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"{self.name} exited (rc={self.proc.wait()}) before listening; "
                                       f"stderr: {self.stderr()!r}")
                seen += chunk
                if self._ready(seen):
                    self._stdout = [seen]
                    # Keep reading stdout (access logs): a full pipe would
                    # block the server in the middle of a test.
                    self._reader = threading.Thread(target=self._drain_stdout, daemon=True)
                    self._reader.start()
                    return self
        except BaseException:
            self.kill()
            raise
        finally:
            sel.close()

    def _ready(self, seen):
        """True once `seen` (stdout so far) says the server is listening;
        sets host and port. Subclasses read other banners."""
        m = _LISTENING.search(seen)
        if not m:
            return False
        self.host = m.group(1).decode().strip("[]")
        self.port = int(m.group(2))
        return True

    def stop(self, timeout=15.0, expect=0, allow_restarts=False, sig=signal.SIGTERM):
        """Sends `sig` (SIGTERM), waits and returns the exit status. Raises
        AssertionError if the status is not `expect` (None: any) or the log
        shows a defect (check_log); kills (and raises) if the server does not
        exit within `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TimeoutError(f"{self.name} did not exit within {timeout} s of signal {sig}")
            finally:
                self._finish()
        else:
            self._finish()
        rc = self.proc.returncode
        if expect is not None and rc != expect:
            raise AssertionError(f"{self.name} exited with {rc}, not {expect}; stderr: "
                                 f"{self.stderr()[-4000:].decode(errors='replace')}")
        check_log(self.name, self.stderr() + self.stdout(), allow_restarts)
        return rc

    def _finish(self):
        if self.proc.stdout.closed:
            return
        if self._reader is not None:
            self._reader.join(5)
        self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr_text = self.stderr()
            self._stderr.close()
            self._stderr = None

    def _drain_stdout(self):
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return
            self._stdout.append(chunk)

    def stdout(self):
        """Everything the server wrote to stdout so far."""
        return b"".join(self._stdout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self._finish()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        """Everything the server wrote to stderr so far."""
        if self._stderr is None:
            return self._stderr_text
        self._stderr.seek(0)
        return self._stderr.read()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"


def wait_until(predicate, timeout=2.0, interval=0.02):
    """Polls `predicate` until it holds or `timeout` passes; returns its last
    value. Only for states that can only be observed by asking (a file
    replaced on disk), never as a stand-in for an event one can wait on."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


_TCP = re.compile(rb"listening on ([0-9.]+|\[[0-9a-fA-F:]+\]):(\d+)\n")
_UNIX = re.compile(rb"listening on unix:(\S+)\n")


class ExampleProcess(AtollProcess):
    """An example server; its banner is "NAME listening on ADDR" per
    endpoint (ADDR = 127.0.0.1:PORT, [::1]:PORT or unix:PATH), not the
    http:// banner AtollProcess reads."""

    def __init__(self, name, *args, unix=None, exe=None):
        super().__init__(exe or name, *args, *(("--unix", unix) if unix else ()))
        self.example = name
        self.unix_path = None
        self._want_unix = unix is not None

    def _ready(self, seen):
        tcp = _TCP.search(seen)
        if not tcp or not seen.startswith(self.example.encode() + b" listening on "):
            return False
        unix = _UNIX.search(seen)
        if self._want_unix and not unix:
            return False
        self.host = tcp.group(1).decode().strip("[]")
        self.port = int(tcp.group(2))
        self.unix_path = unix.group(1).decode() if unix else None
        return True

    def connect(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(5.0)  # every read: a hang fails the test instead of stalling it
        s.connect((self.host, self.port))
        return s
