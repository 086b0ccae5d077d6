"""The admin API over HTTPS, and the command line that talks to it: `atoll
publish --server https://...` with `--ca FILE` for a private CA, the host
name checked, a trailing slash on the URL accepted, and the token never sent
in clear text to a host that is not loopback."""

import os
import shutil
import subprocess
import tempfile
import unittest

from atoll_proc import CERTS, binary, run_atoll
from site_host import SiteHost, write_site
from wire import RawConnection

CERT, KEY = os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem")


class AdminHttpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-admin-tls-")
        cls.host = SiteHost(os.path.join(cls.tmp, "data"), "--admin-tls-cert", CERT, "--admin-tls-key", KEY).start()
        cls.site = write_site(os.path.join(cls.tmp, "site"), {"index.html": "<p>over https</p>"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"atoll serve exited with {rc}: {cls.host.stderr()!r}"

    def atoll(self, *args, server=None, ca=CERT):
        argv = [*args, "--server", server or f"https://127.0.0.1:{self.host.admin_port}", "--token", self.host.token]
        return run_atoll(*argv, *(["--ca", ca] if ca else []))

    def test_the_banner_says_https(self):
        self.assertIn(f"admin API on https://127.0.0.1:{self.host.admin_port}\n".encode(), self.host.stdout())

    def test_publish_and_list_over_https_with_a_private_ca(self):
        p = self.atoll("publish", self.site, "--site", "secure")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"deploy \d+ of secure is live: 1 files")
        self.assertEqual(self.host.get("secure", "/").data, b"<p>over https</p>")
        p = self.atoll("sites", server=f"https://127.0.0.1:{self.host.admin_port}/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^secure\s+\d+")
        p = self.atoll("deploys", "--site", "secure", server=f"https://localhost:{self.host.admin_port}//")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("live", p.stdout)

    def test_an_untrusted_certificate_is_refused_and_says_what_to_do(self):
        p = self.atoll("sites", ca=None)
        self.assertEqual(p.returncode, 1)
        self.assertIn("TLS with 127.0.0.1", p.stderr)
        self.assertIn("self-signed certificate", p.stderr)
        self.assertIn("--ca FILE", p.stderr)
        other = os.path.join(CERTS, "other.pem")
        p = self.atoll("sites", ca=other)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"checked against --ca {other}", p.stderr)

    def test_the_host_name_is_checked(self):
        # other.pem is valid for other.test and 127.0.0.1 only; trusting it
        # does not make it valid for "localhost".
        p = self.atoll("sites", server=f"https://localhost:{self.host.admin_port}", ca=os.path.join(CERTS, "other.pem"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("TLS with localhost", p.stderr)

    def test_plain_http_to_the_admin_port_gets_a_400(self):
        c = RawConnection(self.host.admin_port, timeout=5)
        self.addCleanup(c.close)
        c.send(f"GET /api/sites HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.host.token}\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 400)
        self.assertIn(b"this port speaks HTTPS", r.body)
        p = self.atoll("sites", server=f"http://127.0.0.1:{self.host.admin_port}", ca=None)
        self.assertEqual(p.returncode, 1)
        self.assertIn("HTTP 400", p.stderr)

    def test_the_token_is_not_sent_in_clear_text_off_loopback(self):
        # Refused before any connection is made (the name does not resolve anyway).
        p = self.atoll("sites", server="http://admin.example.invalid:8081", ca=None)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refusing to send the admin token in clear text to admin.example.invalid", p.stderr)
        self.assertIn("https://", p.stderr)

    def test_a_bad_ca_file_is_named(self):
        bad = os.path.join(self.tmp, "not-a-ca.pem")
        with open(bad, "w") as f:
            f.write("not a certificate\n")
        p = self.atoll("sites", ca=bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"cannot use CA file '{bad}'", p.stderr)


class AdminTlsSettingsTest(unittest.TestCase):
    def test_a_cert_without_its_key_is_refused_at_start(self):
        tmp = tempfile.mkdtemp(prefix="atoll-admin-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        p = subprocess.run([binary("atoll"), "serve", "--data", os.path.join(tmp, "data"), "--listen", "127.0.0.1:0",
                            "--admin-listen", "127.0.0.1:0", "--admin-tls-cert", CERT],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--admin-tls-cert and --admin-tls-key go together", p.stderr)

    def test_a_key_that_does_not_match_is_named_at_start(self):
        tmp = tempfile.mkdtemp(prefix="atoll-admin-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        other_key = os.path.join(CERTS, "other-key.pem")
        p = subprocess.run([binary("atoll"), "serve", "--data", os.path.join(tmp, "data"), "--listen", "127.0.0.1:0",
                            "--admin-listen", "127.0.0.1:0", "--admin-tls-cert", CERT, "--admin-tls-key", other_key],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"cannot use key file '{other_key}'", p.stderr)
        self.assertIn("mismatch", p.stderr)
        self.assertNotIn("supervising", p.stdout, "refused before any worker started")


if __name__ == "__main__":
    unittest.main()
