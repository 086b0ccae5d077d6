"""Switching protocols (RFC 9110 §7.8, §15.2.2) as a step of its own: the app
records the switch with Conn::upgrade() and returns, the pipeline finishes
(the access log has its 101 line at once), then the 101 goes out and the new
protocol runs over the connection's bytes, those sent with the request
first. http_probe's /upgrade speaks "x-echo": every byte back, "bye" ends.
And a long-lived response (/events) ends when the server drains."""

import json
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from atoll_proc import AtollProcess, wait_until

UPGRADE = ("GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\n")


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"closed before the head ended: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return lines[0], headers, rest


def read_exactly(s, n, have=b""):
    while len(have) < n:
        chunk = s.recv(n - len(have))
        if not chunk:
            raise AssertionError(f"closed after {have!r}")
        have += chunk
    return have


class UpgradeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-upgrade-")
        cls.log = os.path.join(cls.tmp, "access.log")
        cls.srv = AtollProcess("http_probe", "--access-log", cls.log).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"http_probe exited with {rc}: {cls.srv.stderr()!r}"

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_101_then_the_new_protocol(self):
        s = self.connect()
        s.sendall(UPGRADE.encode())
        status, headers, rest = read_head(s)
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(headers["connection"], "Upgrade")
        self.assertEqual(headers["upgrade"], "x-echo")
        self.assertEqual(headers["x-probe"], "upgraded")
        self.assertNotIn("content-length", headers)
        self.assertEqual(rest, b"")
        s.sendall(b"hello")
        self.assertEqual(read_exactly(s, 5), b"hello")
        s.sendall(b"bye")
        self.assertEqual(read_exactly(s, 3), b"bye")
        self.assertEqual(s.recv(100), b"", "the session ended: the connection closes")

    def test_bytes_sent_with_the_request_reach_the_new_protocol(self):
        s = self.connect()
        s.sendall(UPGRADE.encode() + b"early bytes, bye")
        status, _, rest = read_head(s)
        self.assertTrue(status.startswith("HTTP/1.1 101"))
        self.assertEqual(read_exactly(s, 16, rest), b"early bytes, bye")

    def test_a_request_that_did_not_ask_is_not_switched(self):
        s = self.connect()
        s.sendall(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, _ = read_head(s)
        self.assertEqual(status, "HTTP/1.1 426 Upgrade Required")
        self.assertEqual(headers["upgrade"], "x-echo")

    def test_the_access_log_has_the_101_while_the_session_runs(self):
        s = self.connect()
        s.sendall(UPGRADE.encode().replace(b"/upgrade", b"/upgrade?mark=live"))
        read_head(s)

        def logged():
            try:
                with open(self.log) as f:
                    return [json.loads(l) for l in f if "mark=live" in l]
            except OSError:
                return []
        lines = wait_until(logged, 10)
        self.assertTrue(lines, "no access log line while the session is open")
        self.assertEqual(lines[0]["status"], 101)
        s.sendall(b"bye")
        self.assertEqual(read_exactly(s, 3), b"bye")


class UpgradeDrainTest(unittest.TestCase):
    def test_a_drain_ends_an_idle_session(self):
        srv = AtollProcess("http_probe").start()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            s.sendall(UPGRADE.encode())
            status, _, _ = read_head(s)
            self.assertTrue(status.startswith("HTTP/1.1 101"))
            s.sendall(b"ping")
            self.assertEqual(read_exactly(s, 4), b"ping")
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(s.recv(100), b"", "the idle session is closed by the drain")
            self.assertLess(time.monotonic() - t0, 5, "at once, not at the drain deadline")
        finally:
            s.close()
            self.assertEqual(srv.stop(), 0)


class EventStreamDrainTest(unittest.TestCase):
    """A long-lived response waits on Conn::drain_signal(): a drain ends the
    stream cleanly (its last event, the chunked terminator) at once, not at
    the drain deadline, and the server exits 0."""

    def test_a_drain_ends_an_event_stream_cleanly(self):
        srv = AtollProcess("http_probe").start()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            s.sendall(b"GET /events?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, rest = read_head(s)
            self.assertTrue(status.startswith("HTTP/1.1 200"))
            self.assertEqual(headers["transfer-encoding"], "chunked")
            data = rest
            while b"tick 0" not in data:
                data += s.recv(4096)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            while not data.endswith(b"0\r\n\r\n"):
                chunk = s.recv(4096)
                self.assertTrue(chunk, f"closed before the stream ended: {data!r}")
                data += chunk
            self.assertLess(time.monotonic() - t0, 5, "at once, not after the minute's sleep")
            self.assertIn(b"data: bye", data)
            self.assertNotIn(b"tick 1", data)
        finally:
            s.close()
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
