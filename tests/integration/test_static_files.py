"""'atoll serve --root DIR': validators and conditional requests, byte ranges,
precompressed siblings, index files, redirects, MIME types, and a file
replaced on disk (RFC 9110 §8.8, §13, §14; what browsers and CDNs expect)."""

import email.utils
import gzip
import hashlib
import http.client
import os
import shutil
import subprocess
import tempfile
import unittest

from atoll_proc import AtollProcess, wait_until
from wire import RawConnection

TEXT = b"hello static world\n" * 50


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class StaticFilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="atoll-static-")
        r = cls.root
        write(f"{r}/x.txt", TEXT)
        write(f"{r}/x.txt.gz", gzip.compress(TEXT))
        # No brotli encoder in the standard library: a stand-in (the server
        # never decodes a sibling, it only chooses it).
        write(f"{r}/x.txt.br", b"BROTLI-STAND-IN")
        cls.y = os.urandom(20).hex().encode() * 100
        write(f"{r}/y.txt", cls.y)
        write(f"{r}/y.txt.gz", gzip.compress(cls.y))
        subprocess.run(["zstd", "-q", "-o", f"{r}/y.txt.zst", f"{r}/y.txt"], check=True)
        cls.big = os.urandom(300 * 1024)  # over the 16 KiB inline limit: sendfile
        write(f"{r}/big.bin", cls.big)
        write(f"{r}/index.html", b"<h1>root index</h1>")
        write(f"{r}/sub/index.html", b"<h1>sub index</h1>")
        write(f"{r}/sub/page.html", b"<p>page</p>")
        os.makedirs(f"{r}/empty-dir")
        for name in ("a.html", "a.css", "a.js", "a.json", "a.png", "a.svg", "a.wasm", "a.WOFF2",
                     "a.unknownext", "noext", "dotted.dir/file"):
            write(f"{r}/{name}", b"x")
        cls.srv = AtollProcess("atoll", "serve", "--root", r, "--loops", "2",
                               port_arg=("--listen", "127.0.0.1:0")).start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.root, ignore_errors=True)
        assert rc == 0, f"atoll exited with {rc}: {cls.srv.stderr()!r}"

    def get(self, path, method="GET", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        r.data = r.read()
        return r

    # --- plain GET and HEAD ------------------------------------------------------------

    def test_get_with_validators(self):
        r = self.get("/x.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.data, TEXT)
        self.assertEqual(r.getheader("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(int(r.getheader("Content-Length")), len(TEXT))
        self.assertEqual(r.getheader("Accept-Ranges"), "bytes")
        self.assertRegex(r.getheader("ETag"), r'^"[^"]+"$', "a strong ETag")
        mtime = os.stat(f"{self.root}/x.txt").st_mtime
        self.assertEqual(r.getheader("Last-Modified"), email.utils.formatdate(int(mtime), usegmt=True))

    def test_head_matches_get(self):
        g = self.get("/x.txt")
        h = self.get("/x.txt", method="HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.data, b"")
        for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Accept-Ranges"):
            self.assertEqual(h.getheader(name), g.getheader(name), name)

    def test_big_file(self):
        r = self.get("/big.bin")
        self.assertEqual(r.getheader("Content-Type"), "application/octet-stream")
        self.assertEqual(hashlib.sha256(r.data).digest(), hashlib.sha256(self.big).digest())
        out = subprocess.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{self.port}/big.bin"],
                             capture_output=True, check=True)
        self.assertEqual(out.stdout, self.big)

    def test_missing_is_404(self):
        self.assertEqual(self.get("/nope.txt").status, 404)
        self.assertEqual(self.get("/sub/nope/").status, 404)
        self.assertEqual(self.get("/x.txt/").status, 404, "a file is not a directory")

    def test_other_methods_are_405(self):
        for method in ("POST", "PUT", "DELETE"):
            r = self.get("/x.txt", method=method)
            self.assertEqual(r.status, 405, method)
            self.assertEqual(r.getheader("Allow"), "GET, HEAD")

    # --- conditional requests -----------------------------------------------------------

    def test_if_none_match(self):
        etag = self.get("/x.txt").getheader("ETag")
        for value in (etag, "W/" + etag, "*", f'"other", {etag}'):
            r = self.get("/x.txt", headers={"If-None-Match": value})
            self.assertEqual(r.status, 304, value)
            self.assertEqual(r.data, b"")
            self.assertEqual(r.getheader("ETag"), etag)
        self.assertEqual(self.get("/x.txt", headers={"If-None-Match": '"other"'}).status, 200)

    def test_if_modified_since(self):
        lm = self.get("/x.txt").getheader("Last-Modified")
        self.assertEqual(self.get("/x.txt", headers={"If-Modified-Since": lm}).status, 304)
        later = email.utils.formatdate(email.utils.parsedate_to_datetime(lm).timestamp() + 3600, usegmt=True)
        self.assertEqual(self.get("/x.txt", headers={"If-Modified-Since": later}).status, 304)
        earlier = email.utils.formatdate(email.utils.parsedate_to_datetime(lm).timestamp() - 3600, usegmt=True)
        r = self.get("/x.txt", headers={"If-Modified-Since": earlier})
        self.assertEqual((r.status, r.data), (200, TEXT))
        self.assertEqual(self.get("/x.txt", headers={"If-Modified-Since": "yesterday"}).status, 200)

    def test_if_none_match_wins_over_if_modified_since(self):
        lm = self.get("/x.txt").getheader("Last-Modified")
        r = self.get("/x.txt", headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
        self.assertEqual(r.status, 200, "RFC 9110 §13.1.3: If-Modified-Since is ignored with If-None-Match")

    def test_curl_conditional(self):
        url = f"http://127.0.0.1:{self.port}/x.txt"
        etag = self.get("/x.txt").getheader("ETag")
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                              "-H", f"If-None-Match: {etag}", url], capture_output=True, check=True)
        self.assertEqual(out.stdout, b"304")

    # --- ranges ---------------------------------------------------------------------------

    def test_if_match_and_if_unmodified_since(self):
        # RFC 9110 §13.1.1 and §13.1.4: a GET whose precondition is false is 412.
        r = self.get("/x.txt")
        etag, lm = r.getheader("ETag"), r.getheader("Last-Modified")
        for headers in ({"If-Match": '"no-match"'}, {"If-Match": f"W/{etag}"},
                        {"If-Unmodified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}):
            self.assertEqual(self.get("/x.txt", headers=headers).status, 412, headers)
        for headers in ({"If-Match": etag}, {"If-Match": f'"other", {etag}'}, {"If-Match": "*"},
                        {"If-Unmodified-Since": lm}, {"If-Unmodified-Since": "not a date"},
                        # If-Match present: If-Unmodified-Since is not looked at.
                        {"If-Match": etag, "If-Unmodified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}):
            self.assertEqual(self.get("/x.txt", headers=headers).status, 200, headers)

    def test_single_ranges(self):
        n = len(TEXT)
        for spec, (a, b) in {"bytes=0-4": (0, 4), "bytes=-5": (n - 5, n - 1), "bytes=10-": (10, n - 1),
                             "bytes=900-99999": (900, n - 1), "bytes=0-0": (0, 0)}.items():
            r = self.get("/x.txt", headers={"Range": spec})
            self.assertEqual(r.status, 206, spec)
            self.assertEqual(r.getheader("Content-Range"), f"bytes {a}-{b}/{n}", spec)
            self.assertEqual(r.data, TEXT[a:b + 1], spec)
            self.assertEqual(int(r.getheader("Content-Length")), b - a + 1)

    def test_range_of_a_big_file(self):
        r = self.get("/big.bin", headers={"Range": "bytes=100000-199999"})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.data, self.big[100000:200000])

    def test_multiple_ranges(self):
        r = self.get("/x.txt", headers={"Range": "bytes=0-4,10-14,-3"})
        self.assertEqual(r.status, 206)
        ctype = r.getheader("Content-Type")
        self.assertTrue(ctype.startswith("multipart/byteranges; boundary="), ctype)
        boundary = ctype.split("boundary=")[1].encode()
        parts = r.data.split(b"--" + boundary)
        self.assertEqual(parts[0], b"")
        self.assertEqual(parts[-1], b"--\r\n")
        n = len(TEXT)
        expected = [(0, 4), (10, 14), (n - 3, n - 1)]
        self.assertEqual(len(parts) - 2, len(expected))
        for part, (a, b) in zip(parts[1:-1], expected):
            head, _, body = part.partition(b"\r\n\r\n")
            self.assertIn(f"Content-Range: bytes {a}-{b}/{n}".encode(), head)
            self.assertIn(b"Content-Type: text/plain", head)
            self.assertEqual(body, TEXT[a:b + 1] + b"\r\n")

    def test_if_range(self):
        g = self.get("/x.txt")
        etag, lm = g.getheader("ETag"), g.getheader("Last-Modified")
        self.assertEqual(self.get("/x.txt", headers={"Range": "bytes=0-4", "If-Range": etag}).status, 206)
        self.assertEqual(self.get("/x.txt", headers={"Range": "bytes=0-4", "If-Range": lm}).status, 206)
        # A weak validator never matches If-Range (RFC 9110 §13.1.5).
        for stale in ('"stale"', "W/" + etag, "Thu, 01 Jan 1970 00:00:00 GMT"):
            r = self.get("/x.txt", headers={"Range": "bytes=0-4", "If-Range": stale})
            self.assertEqual((r.status, r.data), (200, TEXT), stale)

    def test_unsatisfiable_range_is_416(self):
        r = self.get("/x.txt", headers={"Range": "bytes=5000-6000"})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.getheader("Content-Range"), f"bytes */{len(TEXT)}")

    def test_malformed_range_is_ignored(self):
        for spec in ("bytes=abc", "bytes=5-1", "items=0-4", "bytes=0-4,x"):
            r = self.get("/x.txt", headers={"Range": spec})
            self.assertEqual((r.status, r.data), (200, TEXT), spec)

    def test_too_many_ranges_are_ignored(self):
        spec = "bytes=" + ",".join(f"{i}-{i}" for i in range(40))
        r = self.get("/x.txt", headers={"Range": spec})
        self.assertEqual((r.status, r.data), (200, TEXT))

    # --- precompressed siblings ---------------------------------------------------------------

    def test_precompressed_choice(self):
        with open(f"{self.root}/x.txt.gz", "rb") as f:
            stored_gzip = f.read()
        cases = {
            # The sibling's own bytes: compressing again would stamp another
            # time into the gzip header once the clock passed a second.
            "gzip": ("gzip", stored_gzip),
            "br, gzip": ("br", b"BROTLI-STAND-IN"),
            "gzip;q=0.5, br;q=0.1": ("gzip", None),
            "br;q=0, gzip;q=0": (None, TEXT),
            "identity": (None, TEXT),
            "deflate": (None, TEXT),
            "*": ("br", None),
        }
        identity_etag = self.get("/x.txt").getheader("ETag")
        for ae, (encoding, body) in cases.items():
            r = self.get("/x.txt", headers={"Accept-Encoding": ae})
            self.assertEqual(r.status, 200, ae)
            self.assertEqual(r.getheader("Content-Encoding"), encoding, ae)
            self.assertIn("Accept-Encoding", r.getheader("Vary", ""), ae)
            self.assertEqual(r.getheader("Content-Type"), "text/plain; charset=utf-8", ae)
            if encoding:
                self.assertNotEqual(r.getheader("ETag"), identity_etag, f"{ae}: each representation has its own ETag")
            if body is not None:
                self.assertEqual(r.data, body, ae)
        r = self.get("/x.txt")
        self.assertIsNone(r.getheader("Content-Encoding"))
        self.assertIn("Accept-Encoding", r.getheader("Vary", ""), "Vary also on the identity answer")

    def test_precompressed_conditional(self):
        gz = self.get("/x.txt", headers={"Accept-Encoding": "gzip"})
        r = self.get("/x.txt", headers={"Accept-Encoding": "gzip", "If-None-Match": gz.getheader("ETag")})
        self.assertEqual(r.status, 304)

    def test_range_is_served_from_the_identity_file(self):
        r = self.get("/x.txt", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-4"})
        self.assertEqual((r.status, r.data), (206, TEXT[:5]))
        self.assertIsNone(r.getheader("Content-Encoding"))

    def test_no_vary_without_siblings(self):
        r = self.get("/a.html", headers={"Accept-Encoding": "gzip"})
        self.assertIsNone(r.getheader("Content-Encoding"))
        self.assertIsNone(r.getheader("Vary"))

    def test_curl_decodes_the_sibling(self):
        out = subprocess.run(["curl", "-sS", "--compressed", "-D", "-", "--max-time", "5",
                              f"http://127.0.0.1:{self.port}/y.txt"], capture_output=True, check=True)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        self.assertIn(b"content-encoding: zstd", head.lower())
        self.assertEqual(body, self.y)
        out = subprocess.run(["curl", "-sS", "-H", "Accept-Encoding: gzip", "--compressed", "--max-time", "5",
                              f"http://127.0.0.1:{self.port}/y.txt"], capture_output=True, check=True)
        self.assertEqual(out.stdout, self.y)

    # --- directories ---------------------------------------------------------------------

    def test_index_files(self):
        self.assertEqual(self.get("/").data, b"<h1>root index</h1>")
        r = self.get("/sub/")
        self.assertEqual(r.data, b"<h1>sub index</h1>")
        self.assertEqual(r.getheader("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(self.get("/empty-dir/").status, 404)

    def test_directory_redirects_to_trailing_slash(self):
        for path, location in (("/sub", "/sub/"), ("/sub?x=1", "/sub/?x=1"), ("/empty-dir", "/empty-dir/"),
                               ("/dotted.dir", "/dotted.dir/")):
            r = self.get(path)
            self.assertEqual(r.status, 301, path)
            self.assertEqual(r.getheader("Location"), location, path)
        out = subprocess.run(["curl", "-sS", "-L", "--max-time", "5", f"http://127.0.0.1:{self.port}/sub"],
                             capture_output=True, check=True)
        self.assertEqual(out.stdout, b"<h1>sub index</h1>")

    def test_percent_encoded_names(self):
        write(f"{self.root}/with space.txt", b"spaced")
        self.assertEqual(self.get("/with%20space.txt").data, b"spaced")

    # --- MIME types -------------------------------------------------------------------------

    def test_mime_types(self):
        expected = {
            "/a.html": "text/html; charset=utf-8",
            "/a.css": "text/css; charset=utf-8",
            "/a.js": "text/javascript; charset=utf-8",
            "/a.json": "application/json",
            "/a.png": "image/png",
            "/a.svg": "image/svg+xml",
            "/a.wasm": "application/wasm",
            "/a.WOFF2": "font/woff2",
            "/a.unknownext": "application/octet-stream",
            "/noext": "application/octet-stream",
            "/dotted.dir/file": "application/octet-stream",
        }
        for path, ctype in expected.items():
            self.assertEqual(self.get(path).getheader("Content-Type"), ctype, path)

    # --- files changing on disk ----------------------------------------------------------------

    def test_replaced_file_is_noticed(self):
        path = f"{self.root}/replaced.txt"
        write(path, b"version one")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)

        def body():
            conn.request("GET", "/replaced.txt")
            r = conn.getresponse()
            return r.status, r.read()

        self.assertEqual(body(), (200, b"version one"))
        write(path + ".tmp", b"version two, longer")  # a deploy: write aside, rename over
        os.replace(path + ".tmp", path)
        self.assertTrue(wait_until(lambda: body() == (200, b"version two, longer"), timeout=2.5))
        with open(path, "r+b") as f:  # rewritten in place, same size
            f.write(b"VERSION")
        self.assertTrue(wait_until(lambda: body() == (200, b"VERSION two, longer"), timeout=2.5))
        os.unlink(path)
        self.assertTrue(wait_until(lambda: body()[0] == 404, timeout=2.5))

    def test_new_file_is_served_at_once(self):
        write(f"{self.root}/fresh.txt", b"fresh")
        self.assertEqual(self.get("/fresh.txt").data, b"fresh")

    # --- the HTTP/1.1 layer under static files ------------------------------------------------------

    def test_pipelined_static_requests(self):
        with RawConnection(self.port) as c:
            c.send("GET /x.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                   "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /x.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n")
            self.assertEqual(c.read_response().body, TEXT)
            self.assertEqual(c.read_response().body, self.big)
            self.assertEqual(c.read_response(head_request=True).header("Content-Length"), str(len(self.big)))
            self.assertEqual(c.read_response().body, TEXT[:5])


if __name__ == "__main__":
    unittest.main()
