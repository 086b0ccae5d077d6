"""The files in dist/ work as shipped: the example atoll.toml is a valid
configuration (every key known; `atoll serve` starts with it, flags
overriding its paths), and the systemd unit and socket pass
`systemd-analyze verify` with the binary where the unit expects it."""

import os
import shutil
import subprocess
import tempfile
import unittest

from atoll_proc import binary
from site_host import SiteHost

DIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist")


class DistTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-dist-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_the_example_config_starts_a_server(self):
        h = SiteHost(os.path.join(self.tmp, "data"), "--config", os.path.join(DIST, "atoll.toml"),
                     "--base-domain", "localhost")
        h.start()
        try:
            status, j = h.admin("GET", "/api/sites")
            self.assertEqual(status, 200, j)
        finally:
            self.assertEqual(h.stop(), 0)

    def test_the_example_config_mentions_every_setting(self):
        with open(os.path.join(DIST, "atoll.toml")) as f:
            text = f.read()
        help_text = subprocess.run([binary("atoll"), "serve", "--help"], capture_output=True, text=True).stdout
        for flag in ("listen", "admin-listen", "data", "base-domain", "demo-sites", "workers", "loops",
                     "max-connections", "max-upload", "tls-cert", "tls-key", "admin-tls-cert", "admin-tls-key",
                     "access-log", "access-log-format", "root", "cache-control"):
            self.assertIn(f"--{flag}", help_text)
            self.assertIn(flag.replace("-", "_") + " =", text, flag)
        self.assertIn("[[certificates]]", text)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_the_systemd_unit_and_socket_verify(self):
        with open(os.path.join(DIST, "atoll.service")) as f:
            unit = f.read().replace("/usr/bin/atoll", binary("atoll"))
        with open(os.path.join(self.tmp, "atoll.service"), "w") as f:
            f.write(unit)
        shutil.copy(os.path.join(DIST, "atoll.socket"), self.tmp)
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(self.tmp, "atoll.service"),
                            os.path.join(self.tmp, "atoll.socket")], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "")
        for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=atoll", "Type=notify"):
            self.assertIn(hardening, unit)


if __name__ == "__main__":
    unittest.main()
