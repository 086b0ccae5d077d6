"""TLS per site: SNI picks a certificate by the names it carries, from the
config file's [[certificates]] or uploaded through the admin API, which every
worker serves at once without a restart. Checked with `openssl s_client
-servername` and a verifying client trusting the test CA."""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from atoll_proc import CERTS, binary
from site_host import SiteHost, tar_gz



def pem(name):
    with open(os.path.join(CERTS, name)) as f:
        return f.read()


class SniTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-sni-")
        config = os.path.join(cls.tmp, "atoll.toml")
        with open(config, "w") as f:
            f.write(f'[[certificates]]\ncert = "{CERTS}/a.pem"\nkey = "{CERTS}/a-key.pem"\n')
        cls.host = SiteHost(os.path.join(cls.tmp, "data"), "--config", config,
                            "--tls-cert", os.path.join(CERTS, "cert.pem"), "--tls-key", os.path.join(CERTS, "key.pem"),
                            workers=2).start()
        for name, domains in (("alpha", ["a.sni.test"]), ("beta", ["b.sni.test", "*.b.sni.test"]), ("gamma", [])):
            status, j = cls.host.admin("POST", "/api/sites", {"name": name, "domains": domains})
            assert status == 201, j
            status, j = cls.host.admin("POST", f"/api/sites/{name}/deploys",
                                       tar_gz({"index.html": f"<p>{name}</p>".encode()}),
                                       content_type="application/gzip")
            assert status == 201, j

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"atoll serve exited with {rc}: {cls.host.stderr()!r}"

    def s_client(self, servername):
        """(subject line, verify line) of `openssl s_client -servername`."""
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.host.port}",
                            "-servername", servername, "-CAfile", os.path.join(CERTS, "ca.pem")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        subject = next((l for l in p.stdout.splitlines() if l.startswith("subject=")), "")
        verify = next((l.strip() for l in p.stdout.splitlines() if "Verify return code" in l), "")
        return subject, verify

    def get(self, servername):
        """A verifying HTTPS GET / with SNI `servername`: the body."""
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
        with socket.create_connection(("127.0.0.1", self.host.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=servername) as s:
                s.sendall(f"GET / HTTP/1.1\r\nHost: {servername}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        return data.split(b"\r\n\r\n", 1)[1]

    def put_certificate(self, site, cert, key):
        return self.host.admin("PUT", f"/api/sites/{site}/certificate", {"cert": pem(cert), "key": pem(key)})

    def test_site_urls_say_https_and_the_port(self):
        status, j = self.host.admin("GET", "/api/sites/gamma")
        self.assertEqual(status, 200, j)
        self.assertEqual(j["url"], f"https://gamma.localhost:{self.host.port}/")
        self.assertIn(f"each site at https://NAME.localhost:{self.host.port}/".encode(), self.host.stdout())

    def test_a_configured_certificate_is_picked_by_its_name(self):
        subject, verify = self.s_client("a.sni.test")
        self.assertEqual(subject, "subject=CN = a.sni.test")
        self.assertEqual(verify, "Verify return code: 0 (ok)")
        self.assertEqual(self.get("a.sni.test"), b"<p>alpha</p>")
        subject, _ = self.s_client("unknown.sni.test")
        self.assertEqual(subject, "subject=CN = localhost", "other names get the default certificate")

    def test_an_uploaded_certificate_is_served_at_once_by_every_worker(self):
        self.assertEqual(self.s_client("www.b.sni.test")[0], "subject=CN = localhost")
        status, j = self.put_certificate("beta", "b.pem", "b-key.pem")
        self.assertEqual(status, 200, j)
        self.assertEqual(sorted(j["names"]), ["*.b.sni.test", "b.sni.test"])
        # Several connections: SO_REUSEPORT spreads them over both workers.
        for _ in range(8):
            self.assertEqual(self.s_client("www.b.sni.test"), ("subject=CN = *.b.sni.test",
                                                               "Verify return code: 0 (ok)"))
        self.assertEqual(self.get("b.sni.test"), b"<p>beta</p>")
        self.assertEqual(self.get("shop.b.sni.test"), b"<p>beta</p>")
        key = os.path.join(self.host.data, "certs", "beta.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        status, j = self.host.admin("DELETE", "/api/sites/beta/certificate")
        self.assertEqual(status, 204, j)
        for _ in range(8):
            self.assertEqual(self.s_client("www.b.sni.test")[0], "subject=CN = localhost")
        status, j = self.host.admin("DELETE", "/api/sites/beta/certificate")
        self.assertEqual(status, 404, j)

    def test_a_site_cannot_take_another_sites_names(self):
        status, j = self.put_certificate("gamma", "b.pem", "b-key.pem")
        self.assertEqual(status, 400, j)
        self.assertIn("which site 'gamma' does not answer to", j["error"])
        self.assertEqual(self.s_client("www.b.sni.test")[0], "subject=CN = localhost")

    def test_bad_certificates_are_refused_with_the_reason(self):
        cases = ((("expired.pem", "expired-key.pem"), "expired on Jan  2 00:00:00 2020"),
                 (("b.pem", "a-key.pem"), "the key"),
                 (("b-key.pem", "b-key.pem"), "must be a PEM certificate"),
                 (("b.pem", "b.pem"), "must be a PEM private key"))
        for (cert, key), why in cases:
            status, j = self.put_certificate("beta", cert, key)
            self.assertEqual(status, 400, (cert, key, j))
            self.assertIn(why, j["error"])
            self.assertNotIn(".new-", j["error"], "temporary file names are not shown")
        status, j = self.host.admin("PUT", "/api/sites/nosuch/certificate",
                                    {"cert": pem("b.pem"), "key": pem("b-key.pem")})
        self.assertEqual(status, 404, j)
        status, j = self.host.admin("PUT", "/api/sites/beta/certificate", {"cert": 1})
        self.assertEqual(status, 400, j)
        self.assertEqual(os.listdir(os.path.join(self.host.data, "certs")) if os.path.isdir(
            os.path.join(self.host.data, "certs")) else [], [], "nothing refused was kept")


class SniConfigTest(unittest.TestCase):
    def test_a_bad_configured_certificate_is_refused_at_start(self):
        tmp = tempfile.mkdtemp(prefix="atoll-sni-")
        self.addCleanup(shutil.rmtree, tmp, True)
        config = os.path.join(tmp, "atoll.toml")
        with open(config, "w") as f:
            f.write(f'[[certificates]]\ncert = "{CERTS}/expired.pem"\nkey = "{CERTS}/expired-key.pem"\n')
        p = subprocess.run([binary("atoll"), "serve", "--config", config,
                            "--data", os.path.join(tmp, "data"), "--listen", "127.0.0.1:0", "--admin-listen",
                            "127.0.0.1:0", "--tls-cert", os.path.join(CERTS, "cert.pem"),
                            "--tls-key", os.path.join(CERTS, "key.pem")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"certificate file '{CERTS}/expired.pem' cannot be used: it expired", p.stderr)


if __name__ == "__main__":
    unittest.main()
