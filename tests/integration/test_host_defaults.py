"""Defaults that do not surprise an operator: demo sites only when a data
directory is created (deleting them sticks; --no-demo for none), read-only
commands never create a data directory, an empty database is refused, the
admin token stays out of the log stream (`atoll token` shows it), every
admin error is JSON (413 included), and the site commands (`atoll sites
create|delete|domains`, `atoll purge`, `atoll --version`)."""

import os
import shutil
import subprocess
import tempfile
import unittest

from atoll_proc import binary, run_atoll
from site_host import SiteHost, write_site


class DefaultsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-defaults-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data = os.path.join(self.tmp, "data")
        self.demo = write_site(os.path.join(self.tmp, "demo", "hello"), {"index.html": "<p>demo</p>"})
        self.demo = os.path.dirname(self.demo)

    def host(self, *args):
        h = SiteHost(self.data, *args, demo_sites=self.demo)
        return h.start()

    def site_names(self, h):
        status, j = h.admin("GET", "/api/sites")
        return [s["name"] for s in j["sites"]]

    def test_demo_sites_come_only_with_a_new_data_directory(self):
        h = self.host()
        try:
            self.assertEqual(self.site_names(h), ["hello"])
            self.assertEqual(h.admin("DELETE", "/api/sites/hello")[0], 204)
        finally:
            self.assertEqual(h.stop(), 0)
        h = self.host()
        try:
            self.assertEqual(self.site_names(h), [], "a deleted demo site stays deleted")
        finally:
            self.assertEqual(h.stop(), 0)

    def test_site_urls_carry_a_port_that_is_not_the_default(self):
        h = self.host()
        try:
            status, j = h.admin("GET", "/api/sites/hello")
            self.assertEqual(status, 200, j)
            self.assertEqual(j["url"], f"http://hello.localhost:{h.port}/")
            self.assertEqual(h.get("hello", "/").status, 200, "the url answers")
            self.assertEqual(h.admin("GET", "/api/sites/nope")[0], 404)
            self.assertIn(f"each site at http://NAME.localhost:{h.port}/".encode(), h.stdout())
        finally:
            self.assertEqual(h.stop(), 0)

    def test_no_demo_makes_an_empty_data_directory(self):
        h = self.host("--no-demo")
        try:
            self.assertEqual(self.site_names(h), [])
        finally:
            self.assertEqual(h.stop(), 0)

    def test_the_token_stays_out_of_the_log_stream(self):
        h = self.host()
        try:
            self.assertNotIn(h.token.encode(), h.stdout())
            self.assertIn(f"admin token created in {self.data}/admin.token".encode(), h.stdout())
        finally:
            self.assertEqual(h.stop(), 0)
        p = run_atoll("token", "--data", self.data)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, h.token))
        p = run_atoll("token", "--data", os.path.join(self.tmp, "none"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no admin token in", p.stderr)

    def test_read_only_commands_never_create_a_data_directory(self):
        missing = os.path.join(self.tmp, "typo")
        for args in (("sites",), ("deploys", "--site", "x")):
            p = run_atoll(*args, "--data", missing)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn(f"no data directory at '{missing}'", p.stderr)
            self.assertEqual(p.stdout, "", "no table header before the error")
            self.assertFalse(os.path.exists(missing))
        os.makedirs(missing)
        p = run_atoll("sites", "--data", missing)
        self.assertIn("holds no atoll.db", p.stderr)
        self.assertEqual(os.listdir(missing), [])

    def test_an_empty_database_is_refused(self):
        os.makedirs(self.data)
        open(os.path.join(self.data, "atoll.db"), "w").close()
        p = run_atoll("sites", "--data", self.data)
        self.assertEqual(p.returncode, 1)
        self.assertIn("it is empty (0 bytes), not an atoll database", p.stderr)
        p = subprocess.run([binary("atoll"), "serve", "--data", self.data, "--listen", "127.0.0.1:0",
                            "--admin-listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"{self.data}/atoll.db", p.stderr)
        self.assertIn("empty (0 bytes)", p.stderr)
        self.assertEqual(os.path.getsize(os.path.join(self.data, "atoll.db")), 0, "the file was left alone")

    def test_every_admin_error_is_json_413_included(self):
        h = self.host("--max-upload", "1000")
        try:
            status, j = h.admin("POST", "/api/sites/hello/deploys", b"x" * 5000, content_type="application/gzip")
            self.assertEqual(status, 413)
            self.assertIsInstance(j, dict, j)
            self.assertIn("error", j)
            status, j = h.admin("GET", "/api/nothing-here")
            self.assertEqual(status, 404)
            self.assertIsInstance(j, (dict, bytes))
        finally:
            self.assertEqual(h.stop(), 0)

    def test_site_commands_local_and_remote(self):
        self.assertEqual(run_atoll("--version").stdout.strip().split()[0], "atoll")
        self.assertRegex(run_atoll("--version").stdout, r"^atoll \d+\.\d+\.\d+\n$")
        p = run_atoll("sites", "create", "shop", "Shop.Example.Test.", "*.cdn.example.test", "--data", self.data)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_atoll("sites", "--data", self.data)
        self.assertRegex(p.stdout, r"(?m)^shop\s+-\s+shop\.example\.test,\*\.cdn\.example\.test$")
        p = run_atoll("sites", "create", "other", "demo.localhost", "--data", self.data)
        self.assertEqual(p.returncode, 1)
        self.assertIn("under the base domain", p.stderr)
        h = self.host()
        try:
            target = ["--server", h.admin_url, "--token", h.token]
            p = run_atoll("sites", "domains", "shop", "www.example.test", *target)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = run_atoll("sites", "create", "thief", "www.example.test", *target)
            self.assertEqual(p.returncode, 1)
            self.assertIn("already belongs to site 'shop'", p.stderr)
            self.assertEqual(run_atoll("purge", *target).returncode, 0)
            p = run_atoll("purge", "--data", self.data)
            self.assertEqual(p.returncode, 1)
            self.assertIn("give --server", p.stderr)
            p = run_atoll("sites", "delete", "shop", *target)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn("shop", self.site_names(h))
            p = run_atoll("sites", "delete", "shop", "--data", self.data)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no site named 'shop'", p.stderr)
        finally:
            self.assertEqual(h.stop(), 0)
        for sub in ("create", "delete", "domains"):
            self.assertEqual(run_atoll("sites", sub, "--help").returncode, 0)


if __name__ == "__main__":
    unittest.main()
