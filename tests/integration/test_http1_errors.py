"""Handler failures at the connection boundary: an exception before the
response becomes a 500, one after it started closes the connection, a header
with CR/LF is never sent, and none of it stops the server."""

import http.client
import unittest

from atoll_proc import AtollProcess
from wire import Closed, RawConnection


class ErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = AtollProcess("http_probe").start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, f"http_probe exited with {rc}: {cls.srv.stderr()!r}"

    def raw(self):
        c = RawConnection(self.port)
        self.addCleanup(c.close)
        return c

    def test_throw_is_500_and_the_connection_goes_on(self):
        c = self.raw()
        c.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 500)
        self.assertIn(b"Internal Server Error", r.body)
        self.assertNotIn(b"probe: /throw", r.body, "the exception's text stays in the log")
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_throw_is_logged(self):
        c = self.raw()
        c.send("GET /throw?logged=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 500)
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")  # the log line is written before this answer
        c.read_response()
        self.assertIn(b"probe: /throw", self.srv.stderr())

    def test_throw_with_unread_body_closes(self):
        c = self.raw()
        c.send("POST /throw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
        self.assertEqual(r.status, 500)
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        # Either the body was skipped and the connection goes on, or it closes;
        # never is "hello" taken for a request.
        try:
            nxt = c.read_response()
            self.assertEqual(nxt.status, 200)
        except Closed:
            pass

    def test_throw_late_closes_mid_response(self):
        c = self.raw()
        c.send("GET /throw-late HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        data = c.read_all()
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"partial\n", data)
        # No terminating chunk: the client can tell the response is incomplete.
        self.assertFalse(data.endswith(b"0\r\n\r\n"), data)
        self.assertEqual(data.count(b"HTTP/1.1"), 1, "the pipelined request is not answered")

    def test_http_client_sees_incomplete_read(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("GET", "/throw-late")
        r = conn.getresponse()
        with self.assertRaises(http.client.IncompleteRead):
            r.read()

    def test_bad_header_is_never_sent(self):
        c = self.raw()
        c.send("GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 500)
        self.assertNotIn(b"evil", r.raw)
        self.assertNotIn(b"X-Injected", r.raw)
        self.assertNotIn(b"must not be sent", r.raw)
        self.assertIsNone(r.header("Set-Cookie"))
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        nxt = c.read_response()
        self.assertEqual(nxt.status, 200)
        self.assertNotIn(b"evil", nxt.raw)

    def test_no_response_is_500(self):
        c = self.raw()
        c.send("GET /none HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 500)
        c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)

    def test_failures_do_not_disturb_other_connections(self):
        # A connection waits in a slow handler while others fail around it.
        slow = self.raw()
        slow.send("GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        for path in ("/throw", "/bad-header", "/none", "/throw-late"):
            c = RawConnection(self.port)
            c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            c.read_all()
            c.close()
        self.assertEqual(slow.read_response().body, b"slow\n")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("GET", "/echo")
        self.assertEqual(conn.getresponse().status, 200)
        self.assertTrue(self.srv.alive())


if __name__ == "__main__":
    unittest.main()
