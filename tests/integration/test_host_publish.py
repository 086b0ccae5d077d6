"""'atoll serve' as a site host: publish, serve, update and roll back, with
`atoll publish` writing into the data directory (local) or through the admin
API (remote); a local publish goes live in a running server within a second;
unknown hosts; and everything survives a restart."""

import os
import re
import shutil
import tempfile
import time
import unittest

from atoll_proc import wait_until
from site_host import SiteHost, SiteHostTestCase, write_site


class HostPublishTest(SiteHostTestCase):
    def site_dir(self, name, files):
        d = tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp)
        return write_site(d, files)

    def body(self, site, path):
        r = self.host.get(site, path)
        return r.status, r.data

    def wait_for(self, site, path, expected, timeout=2.0):
        """Polls until `path` answers (200, expected); fails with what it saw."""
        seen = wait_until(lambda: self.body(site, path) == (200, expected), timeout=timeout)
        if not seen:
            self.fail(f"{site}{path}: wanted {expected!r}, got {self.body(site, path)!r}")

    def deploy_ids(self, site):
        status, j = self.host.admin("GET", f"/api/sites/{site}/deploys")
        self.assertEqual(status, 200, j)
        return [d["id"] for d in j["deploys"]], [d["id"] for d in j["deploys"] if d["live"]]

    # --- local: `atoll publish --data`, noticed by the running server --------------------

    def test_local_publish_update_and_rollback(self):
        v1 = self.site_dir("v1", {"index.html": "<h1>v1 home</h1>", "about.html": "<p>v1 about</p>"})
        out = self.host.publish(v1, "local-site").stdout
        self.assertRegex(out, r"deploy \d+ of local-site is live: 2 files")
        self.wait_for("local-site", "/", b"<h1>v1 home</h1>")
        self.assertEqual(self.body("local-site", "/about"), (200, b"<p>v1 about</p>"))

        v2 = self.site_dir("v2", {"index.html": "<h1>v2 home</h1>", "new.html": "<p>new in v2</p>"})
        self.host.publish(v2, "local-site")
        self.wait_for("local-site", "/", b"<h1>v2 home</h1>")
        self.assertEqual(self.body("local-site", "/new"), (200, b"<p>new in v2</p>"))
        self.assertEqual(self.body("local-site", "/about")[0], 404, "a file not in the new deploy is gone")

        ids, live = self.deploy_ids("local-site")
        self.assertEqual(len(ids), 2)
        self.assertEqual(live, [ids[0]], "the newest deploy is live")
        listing = self.host.cli("deploys", "--site", "local-site").stdout
        self.assertRegex(listing, rf"(?m)^{ids[0]}\s.*live$")

        out = self.host.cli("rollback", "--site", "local-site").stdout
        self.assertIn(f"local-site: deploy {ids[1]} is live", out)
        self.wait_for("local-site", "/", b"<h1>v1 home</h1>")
        self.assertEqual(self.body("local-site", "/about"), (200, b"<p>v1 about</p>"))
        self.assertEqual(self.body("local-site", "/new")[0], 404, "the rolled-back deploy has no new.html")

        self.host.cli("rollback", "--site", "local-site", "--to", str(ids[0]))
        self.wait_for("local-site", "/", b"<h1>v2 home</h1>")
        self.assertEqual(self.body("local-site", "/new"), (200, b"<p>new in v2</p>"))

    def test_local_publish_is_live_within_a_second(self):
        # `atoll publish --data` rings the data directory's doorbell, so this
        # is at once; the 1 s bound leaves a loaded CI machine its margin.
        d = self.site_dir("fast", {"index.html": "first"})
        self.host.publish(d, "fast")
        self.wait_for("fast", "/", b"first")
        for version in ("second", "third"):
            write_site(d, {"index.html": version})
            self.host.publish(d, "fast")
            published = time.monotonic()
            seen = wait_until(lambda: self.body("fast", "/") == (200, version.encode()), timeout=1.0, interval=0.01)
            self.assertTrue(seen, f"not live within a second: {self.body('fast', '/')!r}")
            self.assertLess(time.monotonic() - published, 1.0)

    # --- remote: `atoll publish --server`, through the admin API ---------------------------

    def test_remote_publish_update_and_rollback(self):
        files = {"index.html": "<h1>remote v1</h1>", "assets/app.css": "body { color: red }\n" * 40,
                 "img/logo.png": os.urandom(3000)}
        d = self.site_dir("remote", files)
        out = self.host.publish(d, "remote-site", remote=True).stdout
        self.assertRegex(out, r"deploy \d+ of remote-site is live: 3 files, 3 uploaded")
        # The admin API reloads the site table itself: live at once, no polling.
        self.assertEqual(self.body("remote-site", "/"), (200, b"<h1>remote v1</h1>"))
        self.assertEqual(self.body("remote-site", "/img/logo.png"), (200, files["img/logo.png"]))

        write_site(d, {"index.html": "<h1>remote v2</h1>"})
        out = self.host.publish(d, "remote-site", remote=True).stdout
        self.assertRegex(out, r"live: 3 files, 1 uploaded", "only the changed file is uploaded")
        self.assertEqual(self.body("remote-site", "/"), (200, b"<h1>remote v2</h1>"))
        self.assertEqual(self.body("remote-site", "/assets/app.css")[1], files["assets/app.css"].encode())

        ids, _ = self.deploy_ids("remote-site")
        out = self.host.cli("rollback", "--site", "remote-site", remote=True).stdout
        self.assertIn(f"deploy {ids[1]} is live", out)
        self.assertEqual(self.body("remote-site", "/"), (200, b"<h1>remote v1</h1>"))
        self.host.cli("rollback", "--site", "remote-site", "--to", str(ids[0]), remote=True)
        self.assertEqual(self.body("remote-site", "/"), (200, b"<h1>remote v2</h1>"))

        listing = self.host.cli("sites", remote=True).stdout
        self.assertRegex(listing, rf"(?m)^remote-site\s+{ids[0]}\s")
        listing = self.host.cli("deploys", "--site", "remote-site", remote=True).stdout
        self.assertEqual(len(re.findall(r"(?m)^\d+\s", listing)), 2, listing)

    def test_remote_publish_with_wrong_token_says_so(self):
        d = self.site_dir("tok", {"index.html": "x"})
        p = self.host.cli("publish", d, "--site", "tok", "--server", self.host.admin_url, "--token", "wrong" * 8,
                          check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("HTTP 401", p.stderr)
        self.assertIn("ATOLL_TOKEN", p.stderr)

    # --- refused publishes leave nothing behind ---------------------------------------------

    def test_symlink_in_the_directory_is_refused_by_name(self):
        d = self.site_dir("link", {"index.html": "<h1>x</h1>", "assets/a.css": "a{}" * 200})
        os.symlink("/etc/passwd", os.path.join(d, "assets", "passwd"))
        before = self.host.stored()
        for remote in (False, True):
            p = self.host.publish(d, "with-link", remote=remote, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(os.path.join(d, "assets", "passwd"), p.stderr)
            self.assertIn("symlink", p.stderr)
            self.assertEqual(self.host.stored(), before)

    def test_invalid_site_name_is_refused_naming_the_rule(self):
        d = self.site_dir("bad", {"index.html": "x"})
        before = self.host.stored()
        for name in ("Bad_Name", "-lead", "a.b"):
            for remote in (False, True):
                p = self.host.publish(d, name, remote=remote, check=False)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("1-63 characters of a-z, 0-9 and '-'", p.stderr)
        self.assertEqual(self.host.stored(), before)

    def test_bad_site_config_is_refused_with_its_location(self):
        d = self.site_dir("cfg", {"index.html": "x", "_atoll.toml": "spa = \"index.html\"\nnot_found = 404\n"})
        before = self.host.stored()
        p = self.host.publish(d, "bad-config", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, re.escape(os.path.join(d, "_atoll.toml")) + r":2:\d+: 'not_found' must be a string")
        # A remote publish reads the config before it uploads anything (it
        # needs include_hidden), so it names the local file too.
        p = self.host.publish(d, "bad-config", remote=True, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, re.escape(os.path.join(d, "_atoll.toml")) + r":2:\d+: 'not_found' must be a string")
        self.assertEqual(self.host.stored(), before, "nothing was uploaded")

    # --- hosts ----------------------------------------------------------------------------------

    def test_unknown_host_gets_the_hosts_404_page(self):
        for host in (f"nosuch.localhost:{self.host.port}", f"127.0.0.1:{self.host.port}", "example.com"):
            r = self.host.get(None, "/", host=host)
            self.assertEqual(r.status, 404, host)
            self.assertIn(b"No such site", r.data)
            self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")

    def test_host_names_are_case_insensitive(self):
        d = self.site_dir("case", {"index.html": "case"})
        self.host.publish(d, "case-site", remote=True)
        r = self.host.get(None, "/", host=f"CASE-Site.LocalHost:{self.host.port}")
        self.assertEqual((r.status, r.data), (200, b"case"))

    def test_site_without_a_deploy_says_so(self):
        status, j = self.host.admin("POST", "/api/sites", {"name": "empty-site"})
        self.assertEqual(status, 201, j)
        r = self.host.get("empty-site", "/")
        self.assertEqual(r.status, 404)
        self.assertIn(b"Nothing here yet", r.data)

    def test_custom_domain(self):
        status, j = self.host.admin("POST", "/api/sites", {"name": "custom", "domains": ["WWW.Example.TEST"]})
        self.assertEqual(status, 201, j)
        self.assertEqual(j["domains"], ["www.example.test"])
        self.host.publish(self.site_dir("custom", {"index.html": "custom domain"}), "custom", remote=True)
        r = self.host.get(None, "/", host="www.example.test")
        self.assertEqual((r.status, r.data), (200, b"custom domain"))
        r = self.host.get(None, "/", host=f"custom.localhost:{self.host.port}")
        self.assertEqual((r.status, r.data), (200, b"custom domain"))


class HostRestartTest(unittest.TestCase):
    """Stop the server, start it again on the same data directory: the same
    sites, the same bytes, the same ETags, the same token."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-host-restart-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data = os.path.join(self.tmp, "data")

    def snapshot(self, host, paths):
        out = {}
        for site, path in paths:
            r = host.get(site, path)
            out[(site, path)] = (r.status, r.data, r.header("ETag"))
        return out

    def test_content_survives_a_restart(self):
        a = write_site(os.path.join(self.tmp, "a"), {"index.html": "<h1>site a</h1>", "style.css": "p{}" * 300,
                                                     "docs/index.html": "docs"})
        b = write_site(os.path.join(self.tmp, "b"), {"index.html": "<h1>site b v1</h1>"})
        paths = [("alpha", "/"), ("alpha", "/style.css"), ("alpha", "/docs/"), ("beta", "/"), ("beta", "/gone")]
        first = SiteHost(self.data).start()
        try:
            self.assertIsNotNone(first.token)
            self.assertIn(b"admin token created in", first.stdout())
            self.assertNotIn(first.token.encode(), first.stdout(), "the token is not in the log stream")
            self.assertEqual(first.cli("token").stdout.strip(), first.token)
            first.publish(a, "alpha")
            first.publish(b, "beta", remote=True)
            write_site(b, {"index.html": "<h1>site b v2</h1>"})
            first.publish(b, "beta", remote=True)
            first.cli("rollback", "--site", "beta", remote=True)
            wait_until(lambda: first.get("alpha", "/").status == 200, timeout=2.0)
            before = self.snapshot(first, paths)
            token = first.token
        finally:
            self.assertEqual(first.stop(), 0, first.stderr())
        self.assertEqual(before[("beta", "/")][:2], (200, b"<h1>site b v1</h1>"))

        second = SiteHost(self.data).start()
        try:
            self.assertNotIn(b"admin token", second.stdout(), "the token's file is named once, at the first start")
            self.assertEqual(second.token, token)
            self.assertEqual(self.snapshot(second, paths), before)
            status, j = second.admin("GET", "/api/sites")
            self.assertEqual(status, 200)
            self.assertEqual(sorted(s["name"] for s in j["sites"]), ["alpha", "beta"])
            status, j = second.admin("GET", "/api/sites/beta/deploys")
            self.assertEqual([d["live"] for d in j["deploys"]], [False, True], "the rollback survived too")
        finally:
            self.assertEqual(second.stop(), 0, second.stderr())


if __name__ == "__main__":
    unittest.main()
