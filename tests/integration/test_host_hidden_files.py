"""Hidden names (.env, .git/, .htpasswd) are neither deployed nor served,
whichever way a deploy arrives: a directory published locally or remotely,
a .tar.gz or a manifest through the admin API. `.well-known/` is deployed,
`_atoll.toml`'s `include_hidden` can allow more by name, and every deploy's
answer lists what the rule left out."""

import hashlib
import os
import sqlite3
import tempfile
import unittest

from site_host import SiteHostTestCase, tar_gz, write_site

SECRET = b"AWS_SECRET_ACCESS_KEY=hunter2\n"

SITE = {
    "index.html": b"<h1>home</h1>",
    ".env": SECRET,
    ".git/config": b"[remote \"origin\"]\n\turl = git@example.test:secret.git\n",
    ".git/HEAD": b"ref: refs/heads/main\n",
    "assets/.DS_Store": b"\0\0\0\1Bud1",
    "assets/app.css": b"body{}",
    ".well-known/security.txt": b"Contact: mailto:security@example.test\n",
    ".well-known/.hidden": b"still hidden inside .well-known",
}
REFUSED = [".env", ".git/", "assets/.DS_Store", ".well-known/.hidden"]


class HiddenFilesTest(SiteHostTestCase):
    def create(self, site):
        status, j = self.host.admin("POST", "/api/sites", {"name": site})
        self.assertEqual(status, 201, j)

    def assert_served_right(self, site):
        self.assertEqual(self.host.get(site, "/").data, b"<h1>home</h1>")
        self.assertEqual(self.host.get(site, "/assets/app.css").data, b"body{}")
        r = self.host.get(site, "/.well-known/security.txt")
        self.assertEqual((r.status, r.data), (200, SITE[".well-known/security.txt"]))
        for path in ("/.env", "/.git/config", "/.git/HEAD", "/.git/", "/assets/.DS_Store",
                     "/.well-known/.hidden", "/.env.html"):
            r = self.host.get(site, path)
            self.assertEqual(r.status, 404, f"{site}{path} must not be served")
            self.assertNotIn(b"hunter2", r.data)
        files = {row[0] for row in self.host.db_rows(
            "SELECT path FROM files JOIN deploys ON deploys.id = files.deploy_id "
            "JOIN sites ON sites.id = deploys.site_id WHERE sites.name = ?", site)}
        self.assertEqual(files, {"index.html", "assets/app.css", ".well-known/security.txt"})

    def test_tar_gz_deploy_skips_hidden_names_and_lists_them(self):
        self.create("tarred")
        status, j = self.host.admin("POST", "/api/sites/tarred/deploys", tar_gz(SITE),
                                    content_type="application/gzip")
        self.assertEqual(status, 201, j)
        self.assertEqual(j["files"], 3)
        self.assertEqual(sorted(j["skipped"]), sorted(REFUSED))
        self.assert_served_right("tarred")

    def test_directory_deploys_local_and_remote_skip_and_say_so(self):
        d = write_site(tempfile.mkdtemp(dir=self.tmp), SITE)
        for site, remote in (("dir-local", False), ("dir-remote", True)):
            out = self.host.publish(d, site, remote=remote).stdout
            self.assertRegex(out, rf"deploy \d+ of {site} is live: 3 files")
            self.assertIn("not deployed (hidden;", out)
            for refused in REFUSED:
                self.assertIn(refused, out)
            self.assertNotIn(".git/config", out, "a refused directory is listed once, not file by file")
            self.assertEqual(self.host.cli("deploys", "--site", site).stdout.split("\n")[1].split()[3], "3",
                             "publish and deploys agree on the file count")
            self.assert_served_right(site)

    def test_manifest_deploy_skips_hidden_paths(self):
        self.create("listed")
        files = {}
        for path, data in SITE.items():
            h = hashlib.sha256(data).hexdigest()
            status, j = self.host.admin("PUT", f"/api/blobs/{h}", data,
                                        content_type="application/octet-stream")
            self.assertEqual(status, 201, j)
            files[path] = h
        status, j = self.host.admin("POST", "/api/sites/listed/deploys", {"files": files})
        self.assertEqual(status, 201, j)
        self.assertEqual(sorted(j["skipped"]), sorted(REFUSED))
        self.assert_served_right("listed")

    def test_include_hidden_deploys_named_files_only(self):
        self.create("allowed")
        site = dict(SITE)
        site["_atoll.toml"] = b'include_hidden = [".nojekyll", ".DS_Store"]\n'
        site[".nojekyll"] = b""
        status, j = self.host.admin("POST", "/api/sites/allowed/deploys", tar_gz(site),
                                    content_type="application/gzip")
        self.assertEqual(status, 201, j)
        self.assertEqual(sorted(j["skipped"]), [".env", ".git/", ".well-known/.hidden"])
        self.assertEqual(self.host.get("allowed", "/.nojekyll").status, 200)
        self.assertEqual(self.host.get("allowed", "/assets/.DS_Store").status, 200)
        self.assertEqual(self.host.get("allowed", "/.env").status, 404)

    def test_include_hidden_must_name_hidden_names(self):
        self.create("badlist")
        for toml, why in ((b'include_hidden = ".env"\n', "must be an array"),
                          (b'include_hidden = ["env"]\n', "must be one hidden name"),
                          (b'include_hidden = [".git/config"]\n', "must be one hidden name"),
                          (b'include_hidden = [".."]\n', "must be one hidden name")):
            status, j = self.host.admin("POST", "/api/sites/badlist/deploys",
                                        tar_gz({"_atoll.toml": toml, "index.html": b"x"}),
                                        content_type="application/gzip")
            self.assertEqual(status, 400, j)
            self.assertIn("_atoll.toml:1:", j["error"])
            self.assertIn(why, j["error"])

    def test_a_hidden_file_in_an_older_deploy_is_not_served(self):
        # A deploy made before this rule may hold .env: the host refuses it
        # when serving too.
        self.create("older")
        status, j = self.host.admin("POST", "/api/sites/older/deploys", tar_gz({"index.html": b"<p>old</p>"}),
                                    content_type="application/gzip")
        self.assertEqual(status, 201, j)
        deploy = j["deploy"]
        row = self.host.db_rows("SELECT hash, size, mime FROM files WHERE deploy_id = ? AND path = 'index.html'",
                                deploy)[0]
        con = sqlite3.connect(os.path.join(self.host.data, "atoll.db"), timeout=10)
        with con:
            con.execute("INSERT INTO files(deploy_id, path, hash, size, mime) VALUES (?, '.env', ?, ?, ?)",
                        (deploy, row[0], row[1], row[2]))
        con.close()
        self.assertEqual(self.host.get("older", "/").status, 200)
        self.assertEqual(self.host.get("older", "/.env").status, 404)


if __name__ == "__main__":
    unittest.main()
