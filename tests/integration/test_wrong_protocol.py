"""A client that speaks the wrong protocol for a port is told so at once,
never left waiting for a timeout: plain HTTP sent to a TLS port gets a 400
that says to use https:// (nginx's 497 idea), a TLS ClientHello sent to a
plain port is closed without a byte, and a request head with bare LF line
ends gets its 400 as soon as it arrives."""

import os
import shutil
import socket
import ssl
import tempfile
import time
import unittest

from atoll_proc import CERTS, AtollProcess
from site_host import SiteHost, write_site
from wire import RawConnection



def client_hello():
    """The first flight of a real TLS client (Python's ssl), as bytes."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="demo.localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class PlainHttpOnTlsPortTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-wrong-")
        data = os.path.join(cls.tmp, "data")
        cls.host = SiteHost(data, "--tls-cert", os.path.join(CERTS, "cert.pem"),
                            "--tls-key", os.path.join(CERTS, "key.pem"))
        cls.host.cli("publish", write_site(os.path.join(cls.tmp, "site"), {"index.html": "<p>hi</p>"}),
                     "--site", "demo")
        cls.host.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"atoll serve exited with {rc}: {cls.host.stderr()!r}"

    def test_plain_http_gets_a_400_that_says_to_use_https(self):
        c = RawConnection(self.host.port, timeout=5)
        self.addCleanup(c.close)
        started = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        r = c.read_response()
        self.assertLess(time.monotonic() - started, 3, "answered at once, not at the handshake timeout")
        self.assertEqual(r.status, 400)
        self.assertIn(b"this port speaks HTTPS", r.body)
        self.assertIn(b"https://", r.body)
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(c.closed_by_server(5))

    def test_https_still_works_beside_it(self):
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "cert.pem"))
        with socket.create_connection(("127.0.0.1", self.host.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertTrue(data.endswith(b"<p>hi</p>"))

    def test_a_silent_client_is_still_held_to_the_handshake_timeout_only(self):
        # Nothing sent: no 400 (there is no request to answer), and the
        # connection stays open for now.
        c = RawConnection(self.host.port, timeout=5)
        self.addCleanup(c.close)
        self.assertTrue(c.quiet_for(0.5))


class WrongBytesOnAPlainPortTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = AtollProcess("http_probe").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, f"http_probe exited with {rc}: {cls.srv.stderr()!r}"

    def test_a_tls_client_hello_is_closed_at_once_without_a_byte(self):
        hello = client_hello()
        self.assertEqual(hello[0], 0x16)
        c = RawConnection(self.srv.port, timeout=5)
        self.addCleanup(c.close)
        started = time.monotonic()
        c.send(hello)
        self.assertTrue(c.closed_by_server(3), "the server kept the connection open")
        self.assertLess(time.monotonic() - started, 3)

    def test_a_real_tls_client_fails_fast(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                ctx.wrap_socket(raw, server_hostname="localhost")
        self.assertLess(time.monotonic() - started, 3)

    def test_bare_lf_line_ends_get_a_400_at_once(self):
        for head in (b"GET /echo HTTP/1.1\nHost: x\n\n",
                     b"GET /echo HTTP/1.1\r\nHost: x\n\n",
                     b"GET /echo HTTP/1.1\nHost: x\r\n"):  # incomplete, but already wrong
            c = RawConnection(self.srv.port, timeout=5)
            self.addCleanup(c.close)
            started = time.monotonic()
            c.send(head)
            r = c.read_response()
            self.assertLess(time.monotonic() - started, 3, head)
            self.assertEqual(r.status, 400, head)
            self.assertIn(b"bare LF", r.body)

    def test_a_head_that_arrives_in_pieces_with_crlf_is_still_fine(self):
        c = RawConnection(self.srv.port, timeout=5)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one segment per piece
        for piece in (b"GET /echo HTTP/1.1\r", b"\nHost: x\r\n", b"\r\n"):
            c.send(piece)
        self.assertEqual(c.read_response().status, 200)


if __name__ == "__main__":
    unittest.main()
