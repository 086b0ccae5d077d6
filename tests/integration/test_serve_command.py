"""What the README promises of `atoll serve` as a command: its listeners
(TLS, IPv6, Unix sockets, several at once), its signals, its files, its
connection cap, its configuration file, and its default timeouts.

Each test runs the real `atoll serve` on loopback through SiteHost and talks
to it with real clients (http.client, ssl, raw sockets).
"""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import tempfile
import time
import unittest

from atoll_proc import CERTS
from site_host import SiteHost, write_site
from wire import RawConnection

_ALL_SITES = re.compile(rb"serving sites on (https?://(?:[0-9.]+|\[[0-9a-fA-F:]+\]):\d+|unix:\S+) ")


def http_over_unix(path, request):
    """Sends raw `request` bytes on the Unix socket at `path`; returns the
    whole answer (the request asks the server to close)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data
    finally:
        s.close()


class ServeTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-serve-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data = os.path.join(self.tmp, "data")
        self.site = write_site(os.path.join(self.tmp, "site"), {"index.html": "<h1>served</h1>\n"})

    def refused_start(self, *args):
        """The error of an `atoll serve` that must fail to start."""
        h = SiteHost(self.data, *args)
        self.addCleanup(shutil.rmtree, h.empty, True)
        with self.assertRaises(RuntimeError) as e:
            h.start()
        return str(e.exception)

    def host(self, *args, **kwargs):
        """A started SiteHost with the demo site published into its data."""
        h = SiteHost(self.data, *args, **kwargs)
        h.cli("publish", self.site, "--site", "demo")
        return h.start()


class ListenersTest(ServeTestCase):
    def test_tls_cert_and_key_serve_https(self):
        h = self.host("--tls-cert", os.path.join(CERTS, "cert.pem"), "--tls-key", os.path.join(CERTS, "key.pem"))
        try:
            self.assertIn(b"serving sites on https://", h.stdout())
            ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "cert.pem"))
            # The certificate names 127.0.0.1 (and localhost); the site is chosen by Host.
            c = http.client.HTTPSConnection("127.0.0.1", h.port, timeout=10, context=ctx)
            c.request("GET", "/", headers={"Host": "demo.localhost"})
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"<h1>served</h1>\n"))
            self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
            c.close()
        finally:
            h.stop()

    def test_ipv6_unix_and_repeated_listen(self):
        sock_path = os.path.join(self.tmp, "atoll.sock")
        h = self.host("--listen", "[::1]:0", "--listen", f"unix:{sock_path}")
        try:
            banners = [m.group(1).decode() for m in _ALL_SITES.finditer(h.stdout())]
            self.assertEqual(len(banners), 3, h.stdout())
            self.assertTrue(banners[0].startswith("http://127.0.0.1:"), banners)
            self.assertTrue(banners[1].startswith("http://[::1]:"), banners)
            self.assertEqual(banners[2], f"unix:{sock_path}")
            # IPv4, as every test does.
            self.assertEqual(h.get("demo", "/").status, 200)
            # IPv6 loopback, on a port of its own.
            v6_port = int(banners[1].rsplit(":", 1)[1])
            c = http.client.HTTPConnection("::1", v6_port, timeout=10)
            c.request("GET", "/", headers={"Host": "demo.localhost"})
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"<h1>served</h1>\n"))
            c.close()
            # The Unix socket.
            self.assertTrue(stat.S_ISSOCK(os.stat(sock_path).st_mode))
            answer = http_over_unix(sock_path, b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n")
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])
            self.assertTrue(answer.endswith(b"<h1>served</h1>\n"), answer[-200:])
        finally:
            h.stop()
        # A socket file left behind is cleared at the next start, not an error.
        h = self.host("--listen", f"unix:{sock_path}")
        try:
            answer = http_over_unix(sock_path, b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n")
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])
        finally:
            h.stop()

    def test_unix_socket_with_several_workers(self):
        sock_path = os.path.join(self.tmp, "w.sock")
        h = self.host("--listen", f"unix:{sock_path}", workers=2)
        try:
            for _ in range(20):
                answer = http_over_unix(sock_path, b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n")
                self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])
        finally:
            h.stop()

    def test_a_listener_in_use_is_a_clear_error(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        error = self.refused_start("--listen", f"127.0.0.1:{port}")
        self.assertIn(f"127.0.0.1:{port}", error)
        self.assertIn("another process is using it", error)


class SignalsAndFilesTest(ServeTestCase):
    def test_sigint_drains_like_sigterm(self):
        big = os.urandom(4 * 1024 * 1024)
        write_site(self.site, {"big.bin": big})
        h = self.host()
        s = socket.create_connection(("127.0.0.1", h.port), timeout=20)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n")
        data = s.recv(16384)
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        # The download is in flight (the client has read only its start).
        h.proc.send_signal(signal.SIGINT)
        while chunk := s.recv(65536):
            data += chunk
        self.assertEqual(data.partition(b"\r\n\r\n")[2], big)
        self.assertEqual(h.stop(), 0)  # already exiting: stop() only waits and checks
        self.assertIn(b"signal 2", h.stderr())

    def test_admin_token_is_mode_0600(self):
        h = self.host()
        try:
            mode = stat.S_IMODE(os.stat(os.path.join(self.data, "admin.token")).st_mode)
            self.assertEqual(mode, 0o600, oct(mode))
            # ...and it is the token the admin API takes.
            status, _ = h.admin("GET", "/api/sites")
            self.assertEqual(status, 200)
            status, _ = h.admin("GET", "/api/sites", token="Bearer " + "0" * len(h.token))
            self.assertEqual(status, 401)
        finally:
            h.stop()

    def test_a_flag_overrides_the_config_file(self):
        config = os.path.join(self.tmp, "atoll.toml")
        with open(config, "w") as f:
            f.write('base_domain = "one.test"\n')
        h = self.host("--config", config, "--base-domain", "two.test")
        try:
            self.assertEqual(h.get("demo", "/", host="demo.two.test").status, 200)
            self.assertEqual(h.get("demo", "/", host="demo.one.test").status, 404)
        finally:
            h.stop()
        # Without the flag, the file's value holds.
        h = self.host("--config", config)
        try:
            self.assertEqual(h.get("demo", "/", host="demo.one.test").status, 200)
        finally:
            h.stop()

    def test_a_bad_config_file_names_the_file_and_line(self):
        config = os.path.join(self.tmp, "bad.toml")
        with open(config, "w") as f:
            f.write('base_domain = "one.test"\nloops = "many"\n')
        error = self.refused_start("--config", config)
        self.assertIn(f"{config}:2:", error)
        self.assertIn("'loops' must be a non-negative integer", error)


class ConnectionCapTest(ServeTestCase):
    def test_max_connections_holds_the_next_client_in_the_backlog(self):
        h = self.host("--max-connections", "2")
        try:
            held = []
            for _ in range(2):
                c = RawConnection(h.port, timeout=10)
                self.addCleanup(c.close)
                c.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
                self.assertEqual(c.read_response().status, 200)
                held.append(c)
            # The third connects (the kernel's backlog takes it) but is not
            # served while the cap is reached...
            third = RawConnection(h.port, timeout=10)
            self.addCleanup(third.close)
            third.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
            self.assertTrue(third.quiet_for(1.0), "a third connection was served at a cap of 2")
            # ...and is served once a slot frees.
            held[0].close()
            self.assertEqual(third.read_response().status, 200)
        finally:
            h.stop()


class DefaultTimesTest(ServeTestCase):
    """The README's defaults, observed with nothing set: an idle keep-alive
    connection is closed after 60 s; a drain waits up to 10 s for a response
    in flight, then ends it."""

    def test_idle_keep_alive_is_closed_after_60_s(self):
        h = self.host()
        try:
            c = RawConnection(h.port, timeout=90)
            self.addCleanup(c.close)
            c.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            start = time.monotonic()
            self.assertTrue(c.closed_by_server(timeout=90))
            idle = time.monotonic() - start
            self.assertGreaterEqual(idle, 59.0)
            self.assertLess(idle, 75.0)
        finally:
            h.stop()

    def test_a_drain_ends_a_stalled_download_after_10_s(self):
        write_site(self.site, {"big.bin": os.urandom(32 * 1024 * 1024)})
        h = self.host()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(("127.0.0.1", h.port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200"))
        # The client stops reading: the response can never finish.
        start = time.monotonic()
        h.proc.send_signal(signal.SIGTERM)
        h.proc.wait(timeout=30)
        took = time.monotonic() - start
        self.assertEqual(h.stop(), 0)
        self.assertGreaterEqual(took, 9.5, "the drain waited for the response in flight")
        self.assertLess(took, 15.0, "the drain gave up after its 10 s, before the master's kill")


if __name__ == "__main__":
    unittest.main()
