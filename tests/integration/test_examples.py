"""The example servers the README lists: `examples/echo` (RFC 862 over TCP,
TLS and a Unix socket) and `examples/daytime` (RFC 867), each started with
"--port 0" and found from its "NAME listening on ADDR" banner.

Echo must return every byte exactly: piecemeal writes, all 256 byte values,
a 1 MiB payload, several clients at once, over IPv4, IPv6, TLS (verified
against the test certificate) and a Unix socket. Daytime must send one line,
"%A, %B %d, %Y %H:%M:%S-UTC\\r\\n" (examples/daytime/main.cpp), within a
minute of now, and close."""

import datetime
import os
import shutil
import socket
import ssl
import stat
import struct
import tempfile
import threading
import unittest

from atoll_proc import CERTS, ExampleProcess

CERT = os.path.join(CERTS, "cert.pem")  # CN=localhost, SAN localhost and 127.0.0.1
KEY = os.path.join(CERTS, "key.pem")
OTHER = os.path.join(CERTS, "other.pem")  # CN=other.test: a different self-signed certificate

TIMEOUT = 5.0  # every client read; a hang fails the test instead of stalling it
MIB = 1024 * 1024


def read_exactly(sock, n):
    """Exactly n bytes; fails on EOF first (a read past the echo would hang:
    the socket's timeout turns that into an error)."""
    parts, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 256 * 1024))
        if not chunk:
            raise AssertionError(f"EOF after {got} of {n} bytes")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def echo_in_rounds(test, socks, message, rounds=3):
    """Three rounds over connections all open at once: each round writes
    message(i, round) on every socket, then reads each echo back exactly (a
    server that served one connection at a time would block in round one).
    Closes the sockets."""
    try:
        for rnd in range(rounds):
            sent = [message(i, rnd) for i in range(len(socks))]
            for s, m in zip(socks, sent):
                s.sendall(m)
            for s, m in zip(socks, sent):
                test.assertEqual(read_exactly(s, len(m)), m)
    finally:
        for s in socks:
            s.close()


def read_to_eof(sock):
    parts = []
    while True:
        chunk = sock.recv(256 * 1024)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def echo_round_trips(test, sock, messages):
    """Each message comes back whole and alone before the next is sent."""
    for m in messages:
        sock.sendall(m)
        test.assertEqual(read_exactly(sock, len(m)), m)


def echo_bulk(test, sock, payload, half_close=True):
    """Sends `payload` from a thread while this one reads: the echo comes
    back while we are still writing, and neither side may stop reading."""
    errors = []

    def writer():
        try:
            view = memoryview(payload)
            for off in range(0, len(view), 64 * 1024):  # many writes of odd timing
                sock.sendall(view[off:off + 64 * 1024])
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except BaseException as e:  # reported by the reader below
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        got = read_exactly(sock, len(payload))
    finally:
        t.join(TIMEOUT * 4)
    test.assertFalse(errors, f"writing failed: {errors!r}")
    test.assertFalse(t.is_alive(), "the writer never finished")
    test.assertEqual(len(got), len(payload))
    test.assertTrue(got == payload, "the echoed bytes differ from those sent")
    if half_close:
        # Our end of input reached the server: it closes, with nothing extra.
        test.assertEqual(read_to_eof(sock), b"")


MESSAGES = [b"a", b"hello, echo\n", bytes(range(256)), b"\r\n\r\n", b"\x00" * 17,
            "caf\u00e9 \u2603\n".encode(), os.urandom(5000)]


class EchoTest(unittest.TestCase):
    """examples/echo over TCP (IPv4 and IPv6) and a Unix socket."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-echo-")
        cls.srv = ExampleProcess("echo", "--loops", "2", unix=os.path.join(cls.tmp, "echo.sock")).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop(timeout=10)
            # stop() unlinks the socket it made (src/net/server.cpp).
            assert not os.path.exists(os.path.join(cls.tmp, "echo.sock")), "echo left its Unix socket behind"
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def unix(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(self.srv.unix_path)
        return s

    def test_banner_names_both_endpoints(self):
        self.assertEqual(self.srv.host, "127.0.0.1")  # the default --bind
        self.assertGreater(self.srv.port, 0)  # --port 0 picked a real one
        self.assertEqual(self.srv.unix_path, os.path.join(self.tmp, "echo.sock"))
        self.assertTrue(stat.S_ISSOCK(os.stat(self.srv.unix_path).st_mode))

    def test_tcp_several_writes_echoed_exactly(self):
        with self.srv.connect() as s:
            echo_round_trips(self, s, MESSAGES)
            # Writes sent back to back, without waiting, come back concatenated and in order.
            for m in MESSAGES:
                s.sendall(m)
            joined = b"".join(MESSAGES)
            self.assertEqual(read_exactly(s, len(joined)), joined)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(read_to_eof(s), b"")

    def test_tcp_one_mebibyte(self):
        with self.srv.connect() as s:
            echo_bulk(self, s, os.urandom(MIB))

    def test_tcp_concurrent_clients(self):
        echo_in_rounds(self, [self.srv.connect() for _ in range(8)],
                       lambda i, rnd: f"client {i} round {rnd} ".encode() * (i + 1))
        # And bulk transfers in parallel threads, each with its own bytes.
        payloads = [os.urandom(256 * 1024) for _ in range(6)]
        failures = []
        barrier = threading.Barrier(len(payloads))

        def client(p):
            try:
                with self.srv.connect() as s:
                    barrier.wait(TIMEOUT)
                    echo_bulk(self, s, p)
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=client, args=(p,), daemon=True) for p in payloads]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 4)
        self.assertFalse([t for t in threads if t.is_alive()], "a client never finished")
        self.assertFalse(failures, f"clients failed: {failures!r}")

    def test_unix_socket_echo(self):
        with self.unix() as s:
            echo_round_trips(self, s, MESSAGES)
        with self.unix() as s:
            echo_bulk(self, s, os.urandom(MIB))
        # The TCP listener is still there beside it.
        with self.srv.connect() as s:
            echo_round_trips(self, s, [b"tcp too"])

    def test_client_close_mid_stream_does_not_hurt_others(self):
        # A client that vanishes with unread echo pending (the server's write
        # fails or resets) leaves the server serving everyone else.
        with self.srv.connect() as other:
            for _ in range(4):
                s = self.srv.connect()
                s.sendall(os.urandom(200 * 1024))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()  # RST
            echo_round_trips(self, other, [b"still here"])
        with self.srv.connect() as s:
            echo_round_trips(self, s, [b"and new clients too"])


class EchoIPv6Test(unittest.TestCase):
    def test_bind_ipv6_loopback(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6 in this Python")
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError as e:
            self.skipTest(f"no ::1 here: {e}")
        srv = ExampleProcess("echo", "--bind", "::1", "--loops", "1").start()
        try:
            self.assertEqual(srv.host, "::1")
            with srv.connect() as s:
                echo_round_trips(self, s, MESSAGES)
            # Nothing answers on 127.0.0.1 at that port: it bound only where asked.
            with socket.socket() as s:
                s.settimeout(TIMEOUT)
                with self.assertRaises(ConnectionRefusedError):
                    s.connect(("127.0.0.1", srv.port))
        finally:
            srv.stop(timeout=10)


class EchoDrainTest(unittest.TestCase):
    def test_sigterm_closes_idle_connections_and_exits_zero(self):
        # echo sets wake_on_drain: an idle client is closed at once on SIGTERM,
        # so the drain does not wait out its 10 s for it.
        srv = ExampleProcess("echo", "--loops", "1").start()
        try:
            s = srv.connect()
            echo_round_trips(self, s, [b"before the drain"])
        except BaseException:
            srv.stop()
            raise
        with s:
            self.assertEqual(srv.stop(timeout=5), 0)
            self.assertEqual(read_to_eof(s), b"")  # closed by the server, not reset or hung
        self.assertIn(b"draining", srv.stderr())
        # And the port is free again: nothing listens there any more.
        with socket.socket() as c:
            c.settimeout(TIMEOUT)
            with self.assertRaises(ConnectionRefusedError):
                c.connect(("127.0.0.1", srv.port))


class EchoUnixPathTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-echo-unix-")
        self.path = os.path.join(self.tmp, "s.sock")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_stale_socket_file_is_replaced(self):
        # A socket file left by a process that died (bound, never unlinked).
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(self.path)
        dead.close()
        self.assertTrue(stat.S_ISSOCK(os.stat(self.path).st_mode))
        srv = ExampleProcess("echo", "--loops", "1", unix=self.path).start()
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(TIMEOUT)
                s.connect(self.path)
                echo_round_trips(self, s, [b"over a reclaimed path"])
        finally:
            srv.stop(timeout=10)
        self.assertFalse(os.path.exists(self.path))

    def test_path_that_is_not_a_socket_is_refused(self):
        with open(self.path, "w") as f:
            f.write("precious\n")
        srv = ExampleProcess("echo", "--loops", "1", unix=self.path)
        with self.assertRaises(RuntimeError):  # exited before its banner
            srv.start()
        srv.stop(expect=1)  # main() returns 1 when start() throws
        self.assertIn(b"not a socket", srv.stderr())
        self.assertTrue(os.path.exists(self.path), "the refused server unlinked the file it refused to touch")
        with open(self.path) as f:
            self.assertEqual(f.read(), "precious\n")  # and the file is untouched

    def test_path_a_live_server_answers_on_is_refused_and_left_alone(self):
        first = ExampleProcess("echo", "--loops", "1", unix=self.path).start()
        try:
            second = ExampleProcess("echo", "--loops", "1", unix=self.path)
            with self.assertRaises(RuntimeError):  # exited before its banner
                second.start()
            second.stop(expect=1)
            self.assertIn(b"another server answers there", second.stderr())
            # The first server's socket is still where its clients look for it.
            self.assertTrue(os.path.exists(self.path), "the refused server unlinked the live server's socket")
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(TIMEOUT)
                s.connect(self.path)
                echo_round_trips(self, s, [b"the first server still answers"])
        finally:
            first.stop(timeout=10)


class EchoTlsTest(unittest.TestCase):
    """examples/echo --tls-cert/--tls-key, with Python's ssl verifying the
    certificate (the test certificates are self-signed: cert.pem is its own CA)."""

    @classmethod
    def setUpClass(cls):
        for f in (CERT, KEY, OTHER):
            if not os.path.isfile(f):
                raise unittest.SkipTest(f"{f} is missing (set ATOLL_TEST_CERTS; tests/support/make_certs.sh)")
        cls.srv = ExampleProcess("echo", "--loops", "2", "--tls-cert", CERT, "--tls-key", KEY).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop(timeout=10)

    def context(self, cafile=CERT):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        self.assertEqual(ctx.verify_mode, ssl.CERT_REQUIRED)
        self.assertTrue(ctx.check_hostname)
        return ctx

    def tls(self, ctx=None, server_hostname="localhost"):
        raw = self.srv.connect()
        try:
            return (ctx or self.context()).wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise

    def test_verified_handshake_and_echo(self):
        with self.tls() as s:
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            cert = s.getpeercert()
            self.assertIn((("commonName", "localhost"),), cert["subject"])
            echo_round_trips(self, s, MESSAGES)
            s.sendall(b"".join(MESSAGES))
            self.assertEqual(read_exactly(s, sum(map(len, MESSAGES))), b"".join(MESSAGES))

    def test_verified_by_ip_address(self):
        # The certificate's SAN holds IP:127.0.0.1 too.
        with self.tls(server_hostname="127.0.0.1") as s:
            echo_round_trips(self, s, [b"by address"])

    def test_one_mebibyte_over_tls(self):
        with self.tls() as s:
            # One thread, 64 KiB at a time: OpenSSL's SSL object may not be
            # read in one thread while another writes it (echo_bulk's way),
            # and that race, not the server, made this test fail 1 run in 4.
            payload = os.urandom(MIB)
            for off in range(0, MIB, 64 * 1024):
                chunk = payload[off:off + 64 * 1024]
                s.sendall(chunk)
                self.assertTrue(read_exactly(s, len(chunk)) == chunk, f"the echo differs at {off}")
            s.sendall(b"end")
            self.assertEqual(read_exactly(s, 3), b"end")

    def test_concurrent_tls_clients(self):
        echo_in_rounds(self, [self.tls() for _ in range(6)],
                       lambda i, rnd: f"tls client {i} round {rnd}|".encode() * 50)

    def test_wrong_trust_anchor_fails_verification(self):
        # Verifying against a different certificate fails: the check is real.
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.tls(self.context(cafile=OTHER)).close()
        # ...and a name the certificate does not carry fails too.
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.tls(server_hostname="other.test").close()
        with self.tls() as s:  # the server is unharmed
            echo_round_trips(self, s, [b"after the failures"])

    def test_plaintext_client_gets_no_echo(self):
        with self.srv.connect() as s:
            s.sendall(b"hello in the clear\r\n")
            try:
                got = s.recv(4096)
            except ConnectionResetError:
                got = b""
            # EOF, a reset, or a TLS alert record (content type 21): never the bytes back.
            self.assertNotIn(b"hello", got)
            self.assertTrue(got == b"" or got[0] == 0x15, got)
        with self.tls() as s:
            echo_round_trips(self, s, [b"after the plaintext"])

    def test_tls_1_2_accepted_1_1_refused(self):
        # include/atoll/net/tls.hpp: TLS 1.2+.
        def ctx_for(version):
            ctx = self.context()
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer old versions at all
            ctx.minimum_version = ctx.maximum_version = version
            return ctx

        with self.tls(ctx_for(ssl.TLSVersion.TLSv1_2)) as s:
            self.assertEqual(s.version(), "TLSv1.2")
            echo_round_trips(self, s, [b"tls 1.2"])
        try:
            old = ctx_for(ssl.TLSVersion.TLSv1_1)
        except (ValueError, ssl.SSLError) as e:
            self.skipTest(f"this OpenSSL cannot offer TLS 1.1: {e}")
        with self.assertRaises(ssl.SSLError) as caught:
            self.tls(old).close()
        reason = caught.exception.reason or str(caught.exception)
        if reason in ("NO_PROTOCOLS_AVAILABLE", "UNSUPPORTED_PROTOCOL", "NO_CIPHERS_AVAILABLE"):
            self.skipTest(f"this OpenSSL refused to offer TLS 1.1 itself: {reason}")
        # The server's refusal: a protocol_version alert.
        self.assertIn("PROTOCOL_VERSION", reason)


DAYTIME = "%A, %B %d, %Y %H:%M:%S-UTC"  # examples/daytime/main.cpp (strftime, C locale)


class DaytimeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ExampleProcess("daytime", "--loops", "2").start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop(timeout=10)

    def fetch(self):
        with self.srv.connect() as s:
            return read_to_eof(s)  # returns only if the server closes

    def check_line(self, data):
        self.assertTrue(data.endswith(b"\r\n"), data)
        self.assertEqual(data.count(b"\n"), 1, data)  # one line, then the close
        text = data[:-2].decode("ascii")
        when = datetime.datetime.strptime(text, DAYTIME).replace(tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 60, f"{text!r} is not now ({now})")
        # The weekday it names is the date's own.
        self.assertEqual(text.split(",")[0], when.strftime("%A"))
        return when

    def test_one_line_with_the_time_then_close(self):
        self.check_line(self.fetch())

    def test_every_client_gets_its_own_line(self):
        socks = [self.srv.connect() for _ in range(5)]
        try:
            lines = [read_to_eof(s) for s in socks]
        finally:
            for s in socks:
                s.close()
        times = [self.check_line(l) for l in lines]
        self.assertLess((max(times) - min(times)).total_seconds(), 60)
        # And the server still answers after them.
        self.check_line(self.fetch())

    def test_banner(self):
        self.assertEqual(self.srv.host, "127.0.0.1")
        self.assertGreater(self.srv.port, 0)
        self.assertIsNone(self.srv.unix_path)  # daytime has no --unix


if __name__ == "__main__":
    unittest.main()
