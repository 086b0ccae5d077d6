"""The HTTP/1.1 layer's limits (HttpOptions), each with the status it promises:
414, 431, 413, 408, and the idle timeout. http_probe runs with small limits so
the timeouts take a fraction of a second."""

import http.client
import subprocess
import threading
import time
import unittest

from atoll_proc import AtollProcess
from wire import RawConnection

LIMITS = {
    "--max-request-line": 256,
    "--max-header-line": 256,
    "--max-headers": 10,
    "--max-body": 1000,
    "--header-timeout-ms": 500,
    "--keepalive-timeout-ms": 700,
    "--body-timeout-ms": 500,
}


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        args = [str(x) for kv in LIMITS.items() for x in kv]
        cls.srv = AtollProcess("http_probe", *args).start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, f"http_probe exited with {rc}: {cls.srv.stderr()!r}"

    def raw(self, timeout=5.0):
        c = RawConnection(self.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def refused(self, request, status):
        """Sends `request`; expects `status`, "Connection: close", and the close."""
        c = self.raw()
        c.send(request)
        r = c.read_response()
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.header("Connection", "").lower(), "close")
        self.assertTrue(c.closed_by_server(), "the server closes after refusing")
        return r

    def test_at_the_limits_is_accepted(self):
        c = self.raw()
        path = "/echo?" + "a" * (256 - len("GET /echo? HTTP/1.1"))
        headers = "".join(f"X-H{i}: v\r\n" for i in range(8))
        big = "X-Big: " + "b" * (256 - len("X-Big"))
        c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}{big}\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_long_request_line_is_414(self):
        self.refused("GET /echo?" + "a" * 300 + " HTTP/1.1\r\nHost: x\r\n\r\n", 414)

    def test_long_request_line_without_end_is_414(self):
        # The line has not ended yet: the limit is enforced while it arrives.
        c = self.raw()
        c.send("GET /" + "a" * 2000)
        r = c.read_response()
        self.assertEqual(r.status, 414)
        self.assertTrue(c.closed_by_server())

    def test_long_header_is_431(self):
        self.refused("GET /echo HTTP/1.1\r\nHost: x\r\nX-Long: " + "v" * 300 + "\r\n\r\n", 431)

    def test_too_many_headers_is_431(self):
        headers = "".join(f"X-H{i}: v\r\n" for i in range(12))
        self.refused(f"GET /echo HTTP/1.1\r\nHost: x\r\n{headers}\r\n", 431)

    def test_huge_head_is_431(self):
        # Legal headers (default limits: 100 of 8 KiB each) that together
        # exceed the 16 KiB head block.
        with AtollProcess("http_probe") as srv, RawConnection(srv.port) as c:
            c.send("GET /echo HTTP/1.1\r\nHost: x\r\n" + "".join(f"X-{i}: {'y' * 300}\r\n" for i in range(60)) + "\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 431)
            self.assertTrue(c.closed_by_server())

    def test_body_over_the_limit_is_413(self):
        self.refused("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + "x" * 1001, 413)

    def test_chunked_body_over_the_limit_is_413(self):
        chunk = "x" * 600
        self.refused("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     f"258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n", 413)

    def test_body_at_the_limit_is_accepted(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("POST", "/body", body=b"x" * 1000)
        self.assertEqual(conn.getresponse().status, 200)

    def test_curl_upload_over_the_limit_sees_413(self):
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                              "--data-binary", "@-", f"http://127.0.0.1:{self.port}/body"],
                             input=b"x" * 3_000_000, capture_output=True)
        self.assertEqual(out.stdout, b"413", out.stderr)

    def test_partial_head_times_out_with_408(self):
        c = self.raw()
        start = time.monotonic()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n")
        r = c.read_response()
        elapsed = time.monotonic() - start
        self.assertEqual(r.status, 408)
        self.assertTrue(c.closed_by_server())
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 3.0)

    def test_slowloris_trickle_still_times_out(self):
        # One byte every 100 ms: each byte arrives well within any per-read
        # timeout, but the head as a whole must arrive within 500 ms.
        c = self.raw()
        start = time.monotonic()
        head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        got = None
        for b in head:
            try:
                c.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if not c.quiet_for(0.1):
                break
        got = c.read_response()
        self.assertEqual(got.status, 408)
        self.assertLess(time.monotonic() - start, 3.0)

    def test_silent_new_connection_is_closed_silently(self):
        # Nothing sent at all: closed (within the header or idle timeout,
        # whichever the server applies to a first request), with no 408.
        c = self.raw()
        start = time.monotonic()
        self.assertTrue(c.closed_by_server(timeout=5), "closed, with no bytes sent")
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 3.0)

    def test_idle_after_a_request_is_closed_silently(self):
        c = self.raw()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        start = time.monotonic()
        self.assertTrue(c.closed_by_server(timeout=5))
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.6, "the keep-alive timeout (700 ms), not the header timeout")
        self.assertLess(elapsed, 3.0)

    def test_slow_handler_is_not_a_header_timeout(self):
        # The header deadline covers reading the head, not the handler's work.
        c = self.raw()
        c.send("GET /slow?ms=900 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_stalled_body_is_408(self):
        c = self.raw()
        c.send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        r = c.read_response()
        self.assertEqual(r.status, 408)
        self.assertTrue(c.closed_by_server())

    def test_limits_do_not_stop_the_server(self):
        for _ in range(3):
            self.refused("GET /echo HTTP/1.1\r\nHost: x\r\nX-Long: " + "v" * 300 + "\r\n\r\n", 431)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("GET", "/echo")
        self.assertEqual(conn.getresponse().status, 200)


class SlowUploadTest(unittest.TestCase):
    """The default upload rule (README, "Limits and defaults"): a body must
    arrive at 1 KiB/s or more once 5 s have passed, else 408, long before the
    30 s stall timeout. The client paces its writes: that is the stimulus
    under test, not a wait for the server."""

    @classmethod
    def setUpClass(cls):
        cls.srv = AtollProcess("http_probe").start()  # the defaults, unchanged

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def upload(self, chunk, every, seconds, length):
        """Sends a POST of `length` bytes, `chunk` bytes each `every` s, for
        at most `seconds`; returns (response, seconds until it came)."""
        c = RawConnection(self.srv.port, timeout=40)
        self.addCleanup(c.close)
        c.send(f"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n")
        start = time.monotonic()
        stop = threading.Event()

        def drip():
            sent = 0
            while sent < length and not stop.is_set() and time.monotonic() - start < seconds:
                n = min(chunk, length - sent)
                try:
                    c.sock.sendall(b"x" * n)
                except OSError:
                    return  # the server answered and closed
                sent += n
                stop.wait(every)

        t = threading.Thread(target=drip, daemon=True)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        r = c.read_response()
        return r, time.monotonic() - start

    def test_a_slow_drip_is_408_after_the_grace(self):
        # 400 B/s, well under the 1 KiB/s floor.
        r, took = self.upload(chunk=100, every=0.25, seconds=30, length=100_000)
        self.assertEqual(r.status, 408, r.body)
        self.assertIn(b"slower than 1024 bytes/s", r.body)
        self.assertGreaterEqual(took, 5.0, "not before the 5 s grace")
        self.assertLess(took, 20.0, "the rate rule, not the 30 s stall timeout")

    def test_a_steady_upload_above_the_floor_passes_the_grace(self):
        # 4 KiB/s for 7 s: past the grace, above the floor.
        r, took = self.upload(chunk=1024, every=0.25, seconds=30, length=28 * 1024)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b'"length":28672', r.body)
        self.assertGreater(took, 5.0, "the upload outlasted the grace")


if __name__ == "__main__":
    unittest.main()
