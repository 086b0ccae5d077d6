"""The admin API of 'atoll serve': the bearer token on every route but
/health, and every bad input answered with the right status and NOTHING
stored (blobs, sites, deploys, files and temporary files counted before and
after): archives with '..', absolute paths or links, uploads over
--max-upload, invalid site names, blobs whose bytes do not match their hash."""

import gzip
import hashlib
import http.client
import os
import tarfile
import unittest

from site_host import SiteHostTestCase, tar_gz

MAX_UPLOAD = 256 * 1024  # --max-upload for this server: small, so 413s are cheap


def sha(data):
    return hashlib.sha256(data).hexdigest()


class HostAdminTest(SiteHostTestCase):
    host_args = ("--max-upload", str(MAX_UPLOAD))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A site with a deploy, so refusals are checked against a non-empty store.
        archive = tar_gz([("index.html", b"<h1>base</h1>"), ("style.css", b"p { margin: 0 }\n" * 100)])
        status, j = cls.host.admin("POST", "/api/sites/base/deploys", archive, content_type="application/gzip")
        assert status == 201, j
        cls.base_deploy = j["deploy"]

    def setUp(self):
        self.before = self.host.stored()

    def assert_nothing_stored(self):
        self.assertEqual(self.host.stored(), self.before, "a refused request stored something")

    def assert_refused(self, status, body, want_status, *needles):
        self.assertEqual(status, want_status, body)
        self.assertIsInstance(body, dict, body)
        for n in needles:
            self.assertIn(n, body["error"])
        self.assert_nothing_stored()

    def deploy_archive(self, site, archive):
        return self.host.admin("POST", f"/api/sites/{site}/deploys", archive, content_type="application/gzip")

    # --- authentication -------------------------------------------------------------------

    ROUTES = [
        ("GET", "/api/sites", None),
        ("POST", "/api/sites", b'{"name": "sneaky"}'),
        ("DELETE", "/api/sites/base", None),
        ("GET", "/api/sites/base/deploys", None),
        ("POST", "/api/sites/base/deploys", b'{"files": {}}'),
        ("POST", "/api/blobs/missing", b'{"hashes": []}'),
        ("PUT", "/api/blobs/" + sha(b"sneaky"), b"sneaky"),
        ("POST", "/api/sites/base/rollback", b"{}"),
        ("POST", "/api/cache/purge", None),
        ("GET", "/metrics", None),
        ("GET", "/api/no-such-route", None),
    ]

    def test_every_route_wants_the_token(self):
        token = self.host.token
        wrong = ["Bearer " + "0" * len(token), "Bearer " + token[:-1], "Bearer " + token + "x", "Basic " + token,
                 token, "Bearer", "Bearer  " + token, "Bearer " + token.upper()]
        for method, path, body in self.ROUTES:
            status, j = self.host.admin(method, path, body, token=None, content_type="application/json")
            self.assertEqual(status, 401, f"{method} {path} without a token: {j}")
            self.assertIn("Authorization: Bearer", j["error"])
            for auth in wrong:
                status, j = self.host.admin(method, path, body, token=auth, content_type="application/json")
                self.assertEqual(status, 401, f"{method} {path} with {auth!r}")
                self.assertEqual(j["error"], "wrong token")
        self.assert_nothing_stored()
        self.assertEqual(self.host.get("base", "/").data, b"<h1>base</h1>", "the site was not deleted")

    def test_401_says_how_to_authenticate(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.host.admin_port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/api/sites")
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 401)
        self.assertEqual(r.getheader("WWW-Authenticate"), 'Bearer realm="atoll admin"')
        self.assertEqual(r.getheader("Content-Type"), "application/json")

    def test_the_scheme_is_case_insensitive(self):
        status, _ = self.host.admin("GET", "/api/sites", token="bearer " + self.host.token)
        self.assertEqual(status, 200)

    def test_health_is_open(self):
        for token in (None, "Bearer wrong", True):
            status, j = self.host.admin("GET", "/health", token=token)
            self.assertEqual((status, j), (200, {"status": "ok"}))

    def test_metrics_with_the_token(self):
        status, text = self.host.admin("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"atoll_requests_total", text)
        self.assertIn(b"atoll_connections_accepted_total", text)

    # --- archives -----------------------------------------------------------------------------

    def test_archive_deploy(self):
        archive = tar_gz([("index.html", b"<h1>from tar</h1>"), ("./sub/page.html", b"page"),
                          ("_atoll.toml", b'not_found = "index.html"\n')])
        status, j = self.deploy_archive("from-tar", archive)
        self.assertEqual(status, 201, j)
        self.assertEqual(j["files"], 2)
        self.assertEqual(self.host.get("from-tar", "/").data, b"<h1>from tar</h1>")
        self.assertEqual(self.host.get("from-tar", "/sub/page").data, b"page")
        r = self.host.get("from-tar", "/missing")
        self.assertEqual((r.status, r.data), (404, b"<h1>from tar</h1>"))

    def test_archive_with_dot_dot_is_refused(self):
        for name in ("../escape.html", "assets/../../escape.html", "a/.."):
            archive = tar_gz([("index.html", b"ok"), (name, b"evil")])
            status, j = self.deploy_archive("evil", archive)
            self.assert_refused(status, j, 400, name, "..")

    def test_archive_with_absolute_path_is_refused(self):
        status, j = self.deploy_archive("evil", tar_gz([("index.html", b"ok"), ("/etc/cron.d/evil", b"x")]))
        self.assert_refused(status, j, 400, "/etc/cron.d/evil", "absolute")

    def test_archive_with_symlink_is_refused(self):
        archive = tar_gz([("index.html", b"ok"), ("passwd.txt", tarfile.SYMTYPE, "/etc/passwd")])
        status, j = self.deploy_archive("evil", archive)
        self.assert_refused(status, j, 400, "passwd.txt", "symlink")

    def test_archive_with_hard_link_is_refused(self):
        archive = tar_gz([("index.html", b"ok"), ("hard.txt", tarfile.LNKTYPE, "../../etc/shadow")])
        status, j = self.deploy_archive("evil", archive)
        self.assert_refused(status, j, 400, "hard.txt", "hard link")

    def test_archive_with_device_is_refused(self):
        archive = tar_gz([("index.html", b"ok"), ("dev", tarfile.CHRTYPE, "")])
        status, j = self.deploy_archive("evil", archive)
        self.assert_refused(status, j, 400, "dev", "not a regular file")

    def test_archive_that_is_not_gzip(self):
        status, j = self.deploy_archive("evil", b"PK\x03\x04 a zip file, say")
        self.assert_refused(status, j, 400, "gzip")

    def test_empty_archive(self):
        status, j = self.deploy_archive("evil", tar_gz([]))
        self.assert_refused(status, j, 400, "no files")

    def test_archive_with_bad_site_config(self):
        archive = tar_gz([("index.html", b"x" * 1000), ("style.css", b"p{}" * 500),
                          ("_atoll.toml", b'spa = "index.html"\n[[redirects]]\nfrom = "/a"\nto = "/b"\nstatus = 200\n')])
        status, j = self.deploy_archive("evil", archive)
        self.assertRegex(j.get("error", ""), r"^_atoll\.toml:5:\d+: 'status' must be 301, 302, 307 or 308")
        self.assert_refused(status, j, 400)

    def test_archive_with_duplicate_paths(self):
        archive = tar_gz([("index.html", b"one" * 200), ("index.html", b"two" * 200)])
        status, j = self.deploy_archive("evil", archive)
        self.assert_refused(status, j, 400, "'index.html' appears twice")

    def test_archive_over_the_limit_is_413(self):
        archive = os.urandom(MAX_UPLOAD + 1)  # incompressible: the body itself is over
        status, _ = self.deploy_archive("big", archive)
        self.assertEqual(status, 413)
        self.assert_nothing_stored()

    def test_gzip_bomb_is_413(self):
        # 40 KiB on the wire, 16 MiB unpacked: stopped at --max-upload.
        archive = tar_gz([("zeros.bin", bytes(16 * 1024 * 1024))])
        self.assertLess(len(archive), MAX_UPLOAD)
        status, j = self.deploy_archive("bomb", archive)
        self.assert_refused(status, j, 413, str(MAX_UPLOAD))

    def test_unknown_body_type_is_415(self):
        status, j = self.host.admin("POST", "/api/sites/evil/deploys", b"index.html", content_type="text/plain")
        self.assert_refused(status, j, 415, "application/gzip")

    # --- blobs ----------------------------------------------------------------------------------

    def test_blob_upload_and_missing(self):
        data = os.urandom(1000)
        status, j = self.host.admin("POST", "/api/blobs/missing", {"hashes": [sha(data)]})
        self.assertEqual((status, j), (200, {"missing": [sha(data)]}))
        status, j = self.host.admin("PUT", f"/api/blobs/{sha(data)}", data, content_type="application/octet-stream")
        self.assertEqual(status, 201, j)
        self.assertEqual(j, {"hash": sha(data), "size": 1000})
        status, j = self.host.admin("POST", "/api/blobs/missing", {"hashes": [sha(data)]})
        self.assertEqual(j, {"missing": []})
        with open(os.path.join(self.host.data, "blobs", sha(data)[:2], sha(data)[2:]), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_blob_whose_bytes_do_not_match_is_refused(self):
        claimed = sha(b"what I said I would send")
        status, j = self.host.admin("PUT", f"/api/blobs/{claimed}", b"what I sent",
                                    content_type="application/octet-stream")
        self.assert_refused(status, j, 400, claimed, sha(b"what I sent"), "nothing was stored")

    def test_blob_name_that_is_not_a_digest_is_refused(self):
        for name in (sha(b"x").upper(), sha(b"x")[:-1], "..%2F..%2Fetc%2Fpasswd", "g" * 64):
            status, j = self.host.admin("PUT", f"/api/blobs/{name}", b"x", content_type="application/octet-stream")
            self.assertIn(status, (400, 404), name)
        self.assert_nothing_stored()

    def test_blob_over_the_limit_is_413(self):
        data = os.urandom(MAX_UPLOAD + 1)
        status, _ = self.host.admin("PUT", f"/api/blobs/{sha(data)}", data, content_type="application/octet-stream")
        self.assertEqual(status, 413)
        self.assert_nothing_stored()
        data = data[:MAX_UPLOAD]  # exactly at the limit is fine
        status, j = self.host.admin("PUT", f"/api/blobs/{sha(data)}", data, content_type="application/octet-stream")
        self.assertEqual(status, 201, j)

    def test_missing_wants_digests(self):
        status, j = self.host.admin("POST", "/api/blobs/missing", {"hashes": ["../etc/passwd"]})
        self.assert_refused(status, j, 400, "64 lowercase hex digits")
        status, j = self.host.admin("POST", "/api/blobs/missing", b"not json", content_type="application/json")
        self.assert_refused(status, j, 400, "hashes")

    # --- manifests -------------------------------------------------------------------------------

    def test_manifest_naming_a_blob_never_uploaded(self):
        uploaded = b"p { color: blue }\n" * 100
        status, _ = self.host.admin("PUT", f"/api/blobs/{sha(uploaded)}", uploaded,
                                    content_type="application/octet-stream")
        self.assertEqual(status, 201)
        self.before = self.host.stored()
        never = sha(b"never uploaded")
        status, j = self.host.admin("POST", "/api/sites/evil/deploys",
                                    {"files": {"a.css": sha(uploaded), "b.css": never}})
        self.assert_refused(status, j, 400, never, "has not been uploaded")

    def test_manifest_with_bad_input(self):
        h = sha(b"<h1>base</h1>")  # stored by setUpClass
        cases = [
            ({"files": {"../escape.html": h}}, ".."),
            ({"files": {"/abs.html": h}}, "absolute"),
            ({"files": {"index.html": "not-a-digest"}}, "SHA-256"),
            ({"files": {"index.html": 42}}, "must be a string"),
            ({"files": {}}, "no files"),
            ({"files": ["index.html"]}, "expected"),
            ({"files": {"index.html": h}, "config": "spa = ["}, "_atoll.toml:1:"),
        ]
        for body, needle in cases:
            status, j = self.host.admin("POST", "/api/sites/evil/deploys", body)
            self.assert_refused(status, j, 400, needle)
        status, j = self.host.admin("POST", "/api/sites/evil/deploys", b"{not json", content_type="application/json")
        self.assert_refused(status, j, 400)

    def test_manifest_deploy(self):
        h = sha(b"<h1>base</h1>")
        status, j = self.host.admin("POST", "/api/sites/by-manifest/deploys",
                                    {"files": {"index.html": h, "copy/index.html": h}})
        self.assertEqual(status, 201, j)
        self.assertEqual(j["new_blobs"], 0)
        self.assertEqual(self.host.get("by-manifest", "/copy/").data, b"<h1>base</h1>")

    # --- sites -----------------------------------------------------------------------------------

    def test_invalid_site_names_are_refused_naming_the_rule(self):
        rule = "1-63 characters of a-z, 0-9 and '-'"
        for name in ("Bad_Name", "-lead", "trail-", "x" * 64, "dots.in.name"):
            status, j = self.host.admin("POST", "/api/sites", {"name": name})
            self.assert_refused(status, j, 400, rule)
            status, j = self.deploy_archive(name, tar_gz([("index.html", b"x")]))
            self.assert_refused(status, j, 400, rule)
            status, j = self.host.admin("POST", f"/api/sites/{name}/deploys", {"files": {"index.html": sha(b"x")}})
            self.assert_refused(status, j, 400, rule)

    def test_site_body_errors(self):
        for body in ({"domains": []}, {"name": 5}, {"name": "ok-name", "domains": "a.com"},
                     {"name": "ok-name", "domains": ["a b.com"]}, {"name": "ok-name", "domains": ["a.com:80"]}):
            status, j = self.host.admin("POST", "/api/sites", body)
            self.assert_refused(status, j, 400)

    def test_create_twice_is_409_and_delete(self):
        status, j = self.host.admin("POST", "/api/sites", {"name": "twice"})
        self.assertEqual(status, 201, j)
        self.before = self.host.stored()
        status, j = self.host.admin("POST", "/api/sites", {"name": "twice"})
        self.assert_refused(status, j, 409, "already exists")
        status, _ = self.host.admin("DELETE", "/api/sites/twice")
        self.assertEqual(status, 204)
        status, j = self.host.admin("DELETE", "/api/sites/twice")
        self.assertEqual(status, 404, j)

    def test_deleted_site_stops_answering(self):
        status, j = self.deploy_archive("doomed", tar_gz([("index.html", b"doomed")]))
        self.assertEqual(status, 201, j)
        self.assertEqual(self.host.get("doomed", "/").status, 200)
        status, _ = self.host.admin("DELETE", "/api/sites/doomed")
        self.assertEqual(status, 204)
        r = self.host.get("doomed", "/")
        self.assertEqual(r.status, 404)
        self.assertIn(b"No such site", r.data)

    def test_deploys_of_an_unknown_site(self):
        status, j = self.host.admin("GET", "/api/sites/nobody/deploys")
        self.assertEqual(status, 404, j)

    # --- rollback --------------------------------------------------------------------------------

    def test_rollback_errors(self):
        status, j = self.host.admin("POST", "/api/sites/nobody/rollback", {})
        self.assert_refused(status, j, 404, "nobody")
        status, j = self.host.admin("POST", "/api/sites/base/rollback", {})
        self.assert_refused(status, j, 404, "no earlier deploy")
        status, j = self.host.admin("POST", "/api/sites/base/rollback", {"to": "yesterday"})
        self.assert_refused(status, j, 400)
        status, j = self.host.admin("POST", "/api/sites/base/rollback", {"to": 999999})
        self.assert_refused(status, j, 404, "999999")
        status, j = self.deploy_archive("other", tar_gz([("index.html", b"other")]))
        self.assertEqual(status, 201)
        self.before = self.host.stored()
        status, j2 = self.host.admin("POST", "/api/sites/base/rollback", {"to": j["deploy"]})
        self.assert_refused(status, j2, 404)
        self.assertEqual(self.host.get("base", "/").data, b"<h1>base</h1>")

    def test_rollback_and_forward(self):
        first = tar_gz([("index.html", b"first")])
        second = tar_gz([("index.html", b"second")])
        status, a = self.deploy_archive("flip", first)
        status, b = self.deploy_archive("flip", second)
        self.assertEqual(self.host.get("flip", "/").data, b"second")
        status, j = self.host.admin("POST", "/api/sites/flip/rollback")
        self.assertEqual((status, j["live"]), (200, a["deploy"]))
        self.assertEqual(self.host.get("flip", "/").data, b"first")
        status, j = self.host.admin("POST", "/api/sites/flip/rollback", {"to": b["deploy"]})
        self.assertEqual((status, j["live"]), (200, b["deploy"]))
        self.assertEqual(self.host.get("flip", "/").data, b"second")

    def test_purge(self):
        self.assertEqual(self.host.get("base", "/").status, 200)
        status, _ = self.host.admin("POST", "/api/cache/purge")
        self.assertEqual(status, 204)
        self.assertEqual(self.host.get("base", "/").data, b"<h1>base</h1>")

    def test_gzip_without_a_tar_inside(self):
        # application/x-gzip is accepted too; a .tar.gz gzipped again is not a tar.
        inner = tar_gz([("index.html", b"x")])
        status, j = self.host.admin("POST", "/api/sites/evil/deploys", gzip.compress(inner),
                                    content_type="application/x-gzip")
        self.assertEqual(status, 400, j)
        self.assert_nothing_stored()


if __name__ == "__main__":
    unittest.main()
