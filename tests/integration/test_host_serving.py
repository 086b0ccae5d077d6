"""How 'atoll serve' answers for a published site: ETags and 304s, the
precompressed variants by Accept-Encoding, Cache-Control for HTML and hashed
assets, clean URLs, the _atoll.toml settings (redirects, headers, the 404
page, the single-page-app fallback), and /metrics counting it all."""

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from site_host import SiteHost, write_site

HTML = "<!doctype html><title>home</title>\n" + "<p>paragraph of the home page</p>\n" * 60
ABOUT = "<!doctype html><title>about</title><p>about us</p>\n"
APP_JS = "function hello(name) { return 'hello ' + name; }\n" * 80
BIG = ("big text line for sendfile " * 4 + "\n") * 2000  # over the 16 KiB inline limit
PNG = os.urandom(5000)
NOT_FOUND = "<!doctype html><title>404</title><h1>custom not found page</h1>\n"

SITE_CONFIG = """
not_found = "404.html"

[[redirects]]
from = "/old"
to = "/about"

[[redirects]]
from = "/blog/*"
to = "/posts/*"
status = 308

[[headers]]
path = "/assets/"
name = "X-Test-Header"
value = "assets"
"""


def etag_of(data):
    return '"' + hashlib.sha256(data).hexdigest() + '"'


class HostServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-host-serving-")
        web = write_site(os.path.join(cls.tmp, "web"), {
            "index.html": HTML, "about.html": ABOUT, "dir/index.html": "<p>dir index</p>",
            "assets/app.3f2a9c1e.js": APP_JS, "assets/index-BfSq2x9L.js": APP_JS + "//2\n",
            "assets/plain.js": APP_JS + "//3\n", "photo.20240101.jpg": PNG, "assets/deadbeefcafe.js": APP_JS + "//4\n",
            "assets/report-final2024.js": APP_JS + "//5\n", "assets/chunk-2f8a91bc.js": APP_JS + "//6\n", "big.txt": BIG, "img.png": PNG, "404.html": NOT_FOUND,
            "posts/2024/hello.html": "<p>post</p>", "with space.html": "<p>spaced</p>",
            "caf\u00e9/men\u00fc.html": "<p>unicode</p>", "notes": "plain notes", "notes.html": "<p>notes</p>",
            "posts/2024/index.html": "<p>2024</p>", "_atoll.toml": SITE_CONFIG})
        spa = write_site(os.path.join(cls.tmp, "spa"), {
            "index.html": "<div id=app></div>", "app.js": "render()\n",
            "_atoll.toml": 'spa = "index.html"\n'})
        bare = write_site(os.path.join(cls.tmp, "bare"), {"index.html": "bare"})
        raw = write_site(os.path.join(cls.tmp, "raw"), {
            "index.html": "raw", "about.html": ABOUT, "dir/index.html": "<p>dir index</p>",
            "_atoll.toml": "clean_urls = false\n"})
        cls.host = SiteHost(os.path.join(cls.tmp, "data")).start()
        for d, name in ((web, "web"), (spa, "spa"), (bare, "bare"), (raw, "raw")):
            cls.host.publish(d, name, remote=True)

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"atoll serve exited with {rc}: {cls.host.stderr()!r}"

    def get(self, path, site="web", **kw):
        return self.host.get(site, path, **kw)

    # --- validators ------------------------------------------------------------------------

    def test_etag_is_the_quoted_sha256(self):
        for path, data in (("/", HTML), ("/img.png", PNG), ("/big.txt", BIG)):
            r = self.get(path)
            data = data.encode() if isinstance(data, str) else data
            self.assertEqual(r.status, 200)
            self.assertEqual(r.data, data)
            self.assertEqual(r.header("ETag"), etag_of(data), path)
            self.assertEqual(int(r.header("Content-Length")), len(data))

    def test_if_none_match_gives_304(self):
        for path in ("/", "/img.png", "/big.txt", "/about"):
            etag = self.get(path).header("ETag")
            r = self.get(path, headers={"If-None-Match": etag})
            self.assertEqual(r.status, 304, path)
            self.assertEqual(r.data, b"")
            self.assertEqual(r.header("ETag"), etag)
            self.assertIsNotNone(r.header("Cache-Control"))
            r = self.get(path, headers={"If-None-Match": f'"other", {etag}'})
            self.assertEqual(r.status, 304, "one of a list")
            r = self.get(path, headers={"If-None-Match": '"' + "0" * 64 + '"'})
            self.assertEqual(r.status, 200, "a different ETag")

    def test_if_none_match_star(self):
        self.assertEqual(self.get("/about", headers={"If-None-Match": "*"}).status, 304)

    def test_head_has_the_headers_and_no_body(self):
        r = self.get("/big.txt", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.data, b"")
        self.assertEqual(int(r.header("Content-Length")), len(BIG))
        self.assertEqual(r.header("ETag"), etag_of(BIG.encode()))

    # --- precompressed variants --------------------------------------------------------------

    def test_gzip_variant_decodes_to_the_original(self):
        for path, data in (("/", HTML), ("/big.txt", BIG), ("/assets/app.3f2a9c1e.js", APP_JS)):
            r = self.get(path, headers={"Accept-Encoding": "gzip"})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Encoding"), "gzip", path)
            self.assertIn("Accept-Encoding", r.header("Vary"))
            self.assertEqual(gzip.decompress(r.data), data.encode())
            self.assertLess(len(r.data), len(data))
            self.assertEqual(r.header("ETag"), etag_of(r.data), "each variant has its own ETag")
            self.assertNotEqual(r.header("ETag"), etag_of(data.encode()))

    def test_zstd_variant_decodes_to_the_original(self):
        r = self.get("/big.txt", headers={"Accept-Encoding": "zstd"})
        self.assertEqual(r.header("Content-Encoding"), "zstd")
        out = subprocess.run(["zstd", "-d", "-c", "-q"], input=r.data, capture_output=True, check=True).stdout
        self.assertEqual(out, BIG.encode())
        self.assertEqual(r.header("ETag"), etag_of(r.data))

    def test_brotli_variant(self):
        # No brotli decoder in the standard library: check it is a different,
        # smaller body whose ETag is its own hash.
        r = self.get("/", headers={"Accept-Encoding": "br"})
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertNotEqual(r.data, HTML.encode())
        self.assertLess(len(r.data), len(HTML))
        self.assertEqual(r.header("ETag"), etag_of(r.data))
        self.assertEqual(int(r.header("Content-Length")), len(r.data))

    def test_the_client_preference_wins(self):
        cases = {
            "gzip, deflate, br, zstd": "br",
            "gzip;q=1.0, br;q=0.5": "gzip",
            "br;q=0, gzip": "gzip",
            "zstd;q=0.9, gzip;q=0.8": "zstd",
            "identity": None,
            "deflate": None,
            "*": "br",
            "*;q=0": None,
        }
        for accept, coding in cases.items():
            r = self.get("/big.txt", headers={"Accept-Encoding": accept})
            self.assertEqual(r.header("Content-Encoding"), coding, accept)
            if coding is None:
                self.assertEqual(r.data, BIG.encode(), accept)

    def test_304_for_a_variant(self):
        etag = self.get("/", headers={"Accept-Encoding": "gzip"}).header("ETag")
        r = self.get("/", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        self.assertEqual(r.status, 304)

    def test_binary_files_have_no_variants(self):
        r = self.get("/img.png", headers={"Accept-Encoding": "gzip, br, zstd"})
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.data, PNG)
        self.assertEqual(r.header("Content-Type"), "image/png")

    # --- Cache-Control ------------------------------------------------------------------------

    def test_html_revalidates(self):
        for path in ("/", "/about", "/dir/"):
            self.assertEqual(self.get(path).header("Cache-Control"), "no-cache", path)

    def test_hashed_assets_are_immutable(self):
        for path in ("/assets/app.3f2a9c1e.js", "/assets/index-BfSq2x9L.js"):
            cc = self.get(path).header("Cache-Control")
            self.assertIn("immutable", cc, path)
            self.assertIn("max-age=31536000", cc, path)

    def test_other_assets_are_cached_briefly(self):
        cc = self.get("/assets/plain.js").header("Cache-Control")
        self.assertNotIn("immutable", cc)
        self.assertRegex(cc, r"max-age=\d+")

    def test_only_a_real_content_hash_makes_a_file_immutable(self):
        # A date, an all-letter hex word, or a name with digits in it are not
        # build hashes: the file may change under the same name.
        for path in ("/photo.20240101.jpg", "/assets/deadbeefcafe.js", "/assets/report-final2024.js"):
            self.assertNotIn("immutable", self.get(path).header("Cache-Control"), path)
        self.assertIn("immutable", self.get("/assets/chunk-2f8a91bc.js").header("Cache-Control"))

    # --- clean URLs --------------------------------------------------------------------------

    def test_clean_urls(self):
        self.assertEqual(self.get("/about").data, ABOUT.encode())
        self.assertEqual(self.get("/").data, HTML.encode())
        self.assertEqual(self.get("/dir/").data, b"<p>dir index</p>")
        self.assertEqual(self.get("/about").header("Content-Type"), "text/html; charset=utf-8")

    def assertRedirects(self, path, location, site="web"):
        r = self.get(path, site=site)
        self.assertEqual((r.status, r.header("Location")), (301, location), path)
        return r

    def test_other_spellings_redirect_to_the_clean_url(self):
        # One page, one address: the .html and index.html spellings move.
        self.assertRedirects("/about.html", "/about")
        self.assertRedirects("/about.html?x=1&y=2", "/about?x=1&y=2")
        self.assertRedirects("/index.html", "/")
        self.assertRedirects("/dir/index.html", "/dir/")
        self.assertRedirects("/posts/2024/hello.html", "/posts/2024/hello")
        # about.html with no about/ directory: its address has no slash.
        self.assertRedirects("/about/", "/about")
        self.assertEqual(self.get("/about/", method="HEAD").status, 301)

    def test_a_directory_without_an_index_is_404_only_without_a_page(self):
        self.assertRedirects("/posts/2024/hello/", "/posts/2024/hello")
        r = self.get("/posts/")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.data, NOT_FOUND.encode())
        self.assertEqual(self.get("/posts/2024/").data, b"<p>2024</p>")

    def test_a_file_without_extension_keeps_its_html_sibling_reachable(self):
        # `notes` answers at /notes, so notes.html must keep its own address.
        self.assertEqual(self.get("/notes").data, b"plain notes")
        r = self.get("/notes.html")
        self.assertEqual((r.status, r.data), (200, b"<p>notes</p>"))

    def test_redirect_locations_are_percent_encoded(self):
        self.assertRedirects("/with%20space.html", "/with%20space")
        self.assertRedirects("/caf%C3%A9/men%C3%BC.html", "/caf%C3%A9/men%C3%BC")
        self.assertRedirects("/caf%C3%A9/men%C3%BC/", "/caf%C3%A9/men%C3%BC")

    def test_clean_urls_off_serves_every_spelling(self):
        for path, body in (("/about.html", ABOUT.encode()), ("/about", ABOUT.encode()),
                           ("/dir/index.html", b"<p>dir index</p>"), ("/index.html", b"raw")):
            r = self.get(path, site="raw")
            self.assertEqual((r.status, r.data), (200, body), path)
        self.assertRedirects("/dir", "/dir/", site="raw")
        self.assertEqual(self.get("/about/", site="raw").status, 404)

    def test_percent_encoded_paths(self):
        self.assertEqual(self.get("/with%20space").data, b"<p>spaced</p>")
        self.assertEqual(self.get("/caf%C3%A9/men%C3%BC").data, b"<p>unicode</p>")
        self.assertEqual(self.get("/%61bout").data, ABOUT.encode())
        for path in ("/%2e%2e/%2e%2e/etc/passwd", "/dir/%2E%2E/%2E%2E/x", "/dir%2F..%2F..%2Fx"):
            r = self.get(path)
            self.assertIn(r.status, (400, 404), path)
            self.assertNotIn(b"root:", r.data)

    def test_directory_without_slash_redirects(self):
        r = self.get("/dir")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/dir/")
        r = self.get("/dir?page=2")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/dir/?page=2")

    def test_methods_other_than_get_and_head(self):
        r = self.get("/", method="POST")
        self.assertEqual(r.status, 405)
        self.assertIn("GET", r.header("Allow"))

    def test_paths_that_climb_out_are_refused(self):
        for path in ("/../../etc/passwd", "/dir/../../x", "/a/./b"):
            r = self.get(path)
            self.assertIn(r.status, (400, 404), path)
            self.assertNotIn(b"root:", r.data)

    # --- _atoll.toml --------------------------------------------------------------------------

    def test_redirects(self):
        r = self.get("/old")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/about")
        r = self.get("/blog/2024/hello")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.header("Location"), "/posts/2024/hello")
        self.assertEqual(self.get(r.header("Location")).data, b"<p>post</p>")
        self.assertEqual(self.get("/older").status, 404, "an exact 'from' matches only itself")

    def test_header_rules(self):
        self.assertEqual(self.get("/assets/plain.js").header("X-Test-Header"), "assets")
        self.assertEqual(self.get("/assets/app.3f2a9c1e.js").header("X-Test-Header"), "assets")
        self.assertIsNone(self.get("/about").header("X-Test-Header"))

    def test_not_found_page(self):
        for path in ("/missing", "/deep/missing/page.html", "/assets/nope.js"):
            r = self.get(path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.data, NOT_FOUND.encode())
            self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(self.get("/_atoll.toml").status, 404, "the config is read, not served")

    def test_spa_fallback(self):
        for path in ("/", "/users/42", "/settings/profile"):
            r = self.get(path, site="spa")
            self.assertEqual((r.status, r.data), (200, b"<div id=app></div>"), path)
        self.assertEqual(self.get("/app.js", site="spa").data, b"render()\n")

    def test_no_config_plain_404(self):
        r = self.get("/missing", site="bare")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.data, b"Not Found\n")

    # --- /metrics ------------------------------------------------------------------------------

    def metrics(self):
        status, text = self.host.admin("GET", "/metrics")
        self.assertEqual(status, 200)
        text = text.decode()
        values = {}
        for line in text.splitlines():
            m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
            if m:
                values[m.group(1)] = float(m.group(2))
        return values

    def test_metrics_count_requests_by_site_and_status_and_the_cache(self):
        before = self.metrics()
        path = "/assets/plain.js?metrics"  # the query string is not part of the cache key
        for _ in range(3):
            self.assertEqual(self.get("/about", site="bare").status, 404)
        fresh = "/metrics-probe-" + os.urandom(4).hex()
        self.get(fresh)  # a miss: 404 from the site's page
        self.get("/", site="bare")
        self.get("/", site="bare")
        self.get("/", site="bare", headers={"If-None-Match": etag_of(b"bare")})
        self.get(path)
        after = self.metrics()

        def delta(key):
            return after.get(key, 0) - before.get(key, 0)

        self.assertEqual(delta('atoll_requests_total{site="bare",status="404"}'), 3)
        self.assertEqual(delta('atoll_requests_total{site="bare",status="200"}'), 2)
        self.assertEqual(delta('atoll_requests_total{site="bare",status="304"}'), 1)
        self.assertEqual(delta('atoll_requests_total{site="web",status="404"}'), 1)
        self.assertGreaterEqual(delta('atoll_requests_total{site="web",status="200"}'), 1)
        self.assertGreater(delta('atoll_response_bytes_total{site="bare"}'), 0)
        self.assertGreaterEqual(delta("atoll_cache_misses_total"), 1, "the fresh path was a miss")
        self.assertGreaterEqual(delta("atoll_cache_hits_total"), 4, "repeats were hits")
        self.assertGreaterEqual(delta("atoll_request_duration_seconds_count"), 8)
        self.assertIn("atoll_request_duration_seconds_bucket{le=\"+Inf\"}", after)

    def test_a_repeat_is_a_cache_hit(self):
        path = "/hit-probe-" + os.urandom(4).hex()
        before = self.metrics()
        self.get(path, site="bare")
        middle = self.metrics()
        self.get(path, site="bare")
        after = self.metrics()
        self.assertEqual(middle["atoll_cache_misses_total"] - before["atoll_cache_misses_total"], 1)
        self.assertEqual(middle["atoll_cache_hits_total"] - before["atoll_cache_hits_total"], 0)
        self.assertEqual(after["atoll_cache_hits_total"] - middle["atoll_cache_hits_total"], 1, "negative entries too")
        self.assertEqual(after["atoll_cache_misses_total"] - middle["atoll_cache_misses_total"], 0)

    def test_unknown_hosts_are_counted(self):
        before = self.metrics()
        self.host.get(None, "/", host="nobody.localhost")
        after = self.metrics()
        self.assertEqual(after["atoll_unknown_host_total"] - before["atoll_unknown_host_total"], 1)


if __name__ == "__main__":
    unittest.main()
