"""HTTP/1.x message handling and connection management (RFC 9112, RFC 9110),
checked against http_probe with http.client, raw sockets and curl."""

import email.utils
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from atoll_proc import AtollProcess
from wire import RawConnection


def echo_json(resp):
    return json.loads(resp.body if hasattr(resp, "body") else resp.read())


class ProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-proto-")
        # Larger than the inline limit (16 KiB), so /file goes by sendfile.
        cls.file_data = os.urandom(300 * 1024)
        cls.file_path = os.path.join(cls.tmp, "blob.bin")
        with open(cls.file_path, "wb") as f:
            f.write(cls.file_data)
        cls.srv = AtollProcess("http_probe", "--file", cls.file_path).start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"http_probe exited with {rc}: {cls.srv.stderr()!r}"

    def raw(self, timeout=5.0):
        c = RawConnection(self.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    # --- the request as the handler sees it --------------------------------------

    def test_request_fields_reach_the_handler(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/echo/a%20b/c?x=1&y=two+words&z=%26&x=2", headers={"X-Custom": "Value  "})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        j = echo_json(resp)
        self.assertEqual(j["method"], "GET")
        self.assertEqual(j["path"], "/echo/a b/c")
        self.assertEqual(j["raw_path"], "/echo/a%20b/c")
        self.assertEqual(j["query_string"], "x=1&y=two+words&z=%26&x=2")
        self.assertEqual(j["query"], [["x", "1"], ["y", "two words"], ["z", "&"], ["x", "2"]])
        self.assertEqual(j["version"], "HTTP/1.1")
        self.assertEqual(j["host"], "127.0.0.1")
        headers = {k.lower(): v for k, v in j["headers"]}
        self.assertEqual(headers["x-custom"], "Value", "trailing whitespace is not part of a field value")
        conn.close()

    def test_absolute_form_target(self):
        c = self.raw()
        c.send("GET http://example.test:8080/echo/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        j = echo_json(r)
        self.assertEqual(j["path"], "/echo/abs")
        self.assertEqual(j["query_string"], "q=1")
        # RFC 9112 §3.2.2: the authority in the target overrides Host.
        self.assertEqual(j["host"], "example.test")

    def test_empty_lines_before_the_request_line_are_ignored(self):
        c = self.raw()
        c.send("\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_unknown_path_is_404(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/nowhere")
        self.assertEqual(conn.getresponse().status, 404)
        conn.close()

    # --- versions and persistence -------------------------------------------------

    def test_http10_closes_by_default(self):
        c = self.raw()
        c.send("GET /echo HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(echo_json(r)["version"], "HTTP/1.0")
        self.assertEqual(r.header("Connection", "").lower(), "close")
        self.assertTrue(c.closed_by_server())

    def test_http10_keep_alive_when_asked(self):
        c = self.raw()
        for _ in range(3):
            c.send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Connection", "").lower(), "keep-alive")
        c.send("GET /echo HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.header("Connection", "").lower(), "close")
        self.assertTrue(c.closed_by_server())

    def test_http11_persists_by_default(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/echo")
        r1 = conn.getresponse()
        r1.read()
        sock = conn.sock
        self.assertIsNone(r1.getheader("Connection"))
        conn.request("GET", "/echo")
        r2 = conn.getresponse()
        r2.read()
        self.assertIs(conn.sock, sock, "the second request reused the connection")
        self.assertEqual(r2.status, 200)
        conn.close()

    def test_client_connection_close_is_honoured(self):
        c = self.raw()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection", "").lower(), "close")
        self.assertTrue(c.closed_by_server())

    def test_requests_after_connection_close_are_not_answered(self):
        c = self.raw()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertTrue(c.closed_by_server())

    def test_handler_close_is_announced_and_done(self):
        c = self.raw()
        c.send("GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.body, b"closing\n")
        self.assertEqual(r.header("Connection", "").lower(), "close")
        self.assertTrue(c.closed_by_server())

    def test_max_requests_per_connection(self):
        with AtollProcess("http_probe", "--max-requests", "5") as srv:
            with RawConnection(srv.port) as c:
                self.check_max_requests(c)

    def check_max_requests(self, c):
        for i in range(5):
            c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            if i < 4:
                self.assertIsNone(r.header("Connection"))
        self.assertEqual(r.header("Connection", "").lower(), "close", "the last one announces the close")
        self.assertTrue(c.closed_by_server())

    # --- pipelining -------------------------------------------------------------------

    def test_pipelined_requests_are_answered_in_order(self):
        c = self.raw()
        reqs = "".join(f"GET /echo?i={i} HTTP/1.1\r\nHost: x\r\n\r\n" for i in range(4))
        reqs += "POST /body?raw=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        reqs += "HEAD /echo?i=5 HTTP/1.1\r\nHost: x\r\n\r\n"
        reqs += "POST /echo?i=6 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"  # body left unread
        reqs += "GET /slow?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n"
        reqs += "GET /echo?i=8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        c.send(reqs)  # one send: the server sees them all at once
        for i in range(4):
            self.assertEqual(echo_json(c.read_response())["query"], [["i", str(i)]])
        self.assertEqual(c.read_response().body, b"hello")
        head = c.read_response(head_request=True)
        self.assertEqual(head.status, 200)
        self.assertEqual(echo_json(c.read_response())["query"], [["i", "6"]])
        self.assertEqual(c.read_response().body, b"slow\n")
        self.assertEqual(echo_json(c.read_response())["query"], [["i", "8"]])
        self.assertTrue(c.closed_by_server())

    def test_pipelining_byte_by_byte(self):
        c = self.raw()
        data = b"GET /echo?i=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?i=2 HTTP/1.1\r\nHost: x\r\n\r\n"
        for b in data:
            c.send(bytes([b]))
        self.assertEqual(echo_json(c.read_response())["query"], [["i", "1"]])
        self.assertEqual(echo_json(c.read_response())["query"], [["i", "2"]])

    # --- HEAD, bodiless statuses, Date -----------------------------------------------------

    def test_head_has_gets_headers_and_no_body(self):
        c = self.raw()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        get = c.read_response()
        # HEAD then GET in one send: if HEAD carried a body, the GET's status
        # line would not come next.
        c.send("HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head_request=True)
        after = c.read_response()
        self.assertEqual(head.status, 200)
        self.assertEqual(after.status, 200)
        self.assertEqual(head.header("Content-Type"), get.header("Content-Type"))
        # The echo differs only in the method name: 4 bytes for 3.
        self.assertEqual(int(head.header("Content-Length")), int(get.header("Content-Length")) + 1)

    def test_head_of_a_stream_has_no_body(self):
        c = self.raw()
        c.send("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head_request=True)
        self.assertEqual(head.status, 200)
        self.assertEqual(c.read_response().status, 200)

    def test_bodiless_statuses(self):
        c = self.raw()
        for code in (204, 304):
            c.send(f"GET /status?code={code} HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, code)
            self.assertIsNone(r.header("Content-Length"), f"{code} has no Content-Length")
            self.assertIsNone(r.header("Transfer-Encoding"))
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200, "nothing stray after the bodiless responses")

    def test_date_header(self):
        c = self.raw()
        before = time.time()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        after = time.time()
        dates = r.header_all("Date")
        self.assertEqual(len(dates), 1)
        # IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
        self.assertRegex(dates[0], r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                                   r"\d{4} \d\d:\d\d:\d\d GMT$")
        t = email.utils.parsedate_to_datetime(dates[0]).timestamp()
        self.assertLessEqual(before - 2, t)
        self.assertLessEqual(t, after + 1)

    def test_status_line(self):
        c = self.raw()
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(c.read_response().raw.startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_a_higher_http1_minor_version_is_served_as_1_1(self):
        # RFC 9110 §2.5: the highest version we support answers.
        for minor in "29":
            c = self.raw()
            c.send(f"GET /echo HTTP/1.{minor}\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, minor)
            self.assertTrue(r.raw.startswith(b"HTTP/1.1 200 OK\r\n"))
            self.assertEqual(json.loads(r.body)["version"], "HTTP/1.1")
            c.send("GET /echo?again=1 HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive, as for 1.1
            self.assertEqual(c.read_response().status, 200)

    def test_unsupported_major_version_is_505(self):
        c = self.raw()
        c.send("GET /echo HTTP/2.0\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertIn(r.status, (400, 505))
        self.assertTrue(c.closed_by_server())

    # --- streamed and informational responses --------------------------------------------

    def test_chunked_stream(self):
        c = self.raw()
        c.send("GET /stream?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.chunked)
        self.assertIsNone(r.header("Content-Length"))
        self.assertEqual(r.body, b"chunk-0\nchunk-1\nchunk-2\n")
        self.assertIn(b"\r\n8\r\nchunk-0\n\r\n", r.raw)
        self.assertTrue(r.raw.endswith(b"0\r\n\r\n"))
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200, "the connection survives a stream")

    def test_stream_is_sent_as_it_is_produced(self):
        c = self.raw()
        c.send("GET /stream?n=2&delay=400 HTTP/1.1\r\nHost: x\r\n\r\n")
        c._read_until(b"\r\n\r\n", time.monotonic() + 5)  # the head comes at once...
        self.assertEqual(c.buf, b"")
        self.assertTrue(c.quiet_for(0.1), "...before any chunk")
        c._read_until(b"chunk-0\n\r\n", time.monotonic() + 5)
        first = time.monotonic()
        c._read_until(b"0\r\n\r\n", time.monotonic() + 5)
        self.assertGreater(time.monotonic() - first, 0.2, "the second chunk came later, on its own")

    def test_http10_stream_is_delimited_by_close(self):
        c = self.raw()
        c.send("GET /stream?n=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        self.assertIsNone(r.header("Transfer-Encoding"), "HTTP/1.0 has no chunked coding")
        self.assertEqual(r.header("Connection", "").lower(), "close")
        self.assertEqual(r.body, b"chunk-0\nchunk-1\n")

    def test_early_hints(self):
        c = self.raw()
        c.send("GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
        hint = c.read_response(interim=True)
        self.assertEqual(hint.status, 103)
        self.assertEqual(hint.header("Link"), "</style.css>; rel=preload; as=style")
        final = c.read_response()
        self.assertEqual(final.status, 200)
        self.assertEqual(final.body, b"hinted\n")

    def test_early_hints_not_sent_to_http10(self):
        c = self.raw()
        c.send("GET /hints HTTP/1.0\r\n\r\n")
        r = c.read_response(interim=True)
        self.assertEqual(r.status, 200)

    def test_curl_ignores_early_hints(self):
        out = subprocess.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{self.port}/hints"],
                             capture_output=True, check=True)
        self.assertEqual(out.stdout, b"hinted\n")

    # --- files -----------------------------------------------------------------------------

    def test_send_file_whole(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/file")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.getheader("Content-Length")), len(self.file_data))
        self.assertEqual(hashlib.sha256(r.read()).digest(), hashlib.sha256(self.file_data).digest())
        conn.request("GET", "/echo")  # the connection goes on after a sendfile
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_send_file_slices(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        for off, n in ((0, 1), (1000, 100), (5000, 20000), (len(self.file_data) - 7, 7)):
            conn.request("GET", f"/file?offset={off}&length={n}")
            r = conn.getresponse()
            self.assertEqual(r.read(), self.file_data[off:off + n])
        conn.close()

    def test_send_file_pipelined(self):
        c = self.raw()
        c.send("GET /file?offset=10&length=5 HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /file HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /file?offset=0&length=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().body, self.file_data[10:15])
        self.assertEqual(c.read_response().body, self.file_data)
        self.assertEqual(c.read_response().body, self.file_data[0:3])

    # --- curl ------------------------------------------------------------------------------

    def test_curl_reuses_the_connection(self):
        url = f"http://127.0.0.1:{self.port}"
        out = subprocess.run(["curl", "-sS", "-v", "--max-time", "5", f"{url}/echo?a=1", f"{url}/echo?a=2"],
                             capture_output=True, check=True)
        self.assertIn(b"Re-using existing connection", out.stderr)
        bodies = out.stdout.decode().strip().split("\n")
        self.assertEqual([json.loads(b)["query"] for b in bodies], [[["a", "1"]], [["a", "2"]]])

    def test_curl_http10(self):
        out = subprocess.run(["curl", "-sS", "-0", "-D", "-", "--max-time", "5", f"http://127.0.0.1:{self.port}/echo"],
                             capture_output=True, check=True)
        self.assertIn(b'"version":"HTTP/1.0"', out.stdout)


class HelloTest(unittest.TestCase):
    """The smallest application, started and stopped like a user would."""

    def test_hello(self):
        srv = AtollProcess("hello", "--loops", "1").start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            for _ in range(3):
                conn.request("GET", "/")
                r = conn.getresponse()
                self.assertEqual((r.status, r.read()), (200, b"Hello World!"))
            conn.close()
            out = subprocess.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{srv.port}/"],
                                 capture_output=True, check=True)
            self.assertEqual(out.stdout, b"Hello World!")
            with RawConnection(srv.port) as c:
                c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
                for _ in range(10):
                    self.assertEqual(c.read_response().body, b"Hello World!")
        finally:
            self.assertEqual(srv.stop(), 0, "SIGTERM drains and exits cleanly")


if __name__ == "__main__":
    unittest.main()
