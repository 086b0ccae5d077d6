"""The site host serves files with HTTP's file semantics, through the same
responder as static files: Last-Modified and If-Modified-Since, If-Match and
If-Unmodified-Since (412), an If-None-Match that is only a prefix or a
substring of the ETag (not a 304), and byte ranges (single, multipart, 416,
If-Range), so a large download on a hosted site can resume."""

import os
import re
import unittest

from site_host import SiteHostTestCase, write_site

BIG = os.urandom(300 * 1024)  # past the in-memory limit: sendfile
SMALL = b"0123456789" * 10
TEXT = ("a line of text that compresses well\n" * 200).encode()  # has br/zstd/gzip variants
OLD = "Sun, 06 Nov 1994 08:49:37 GMT"
LATER = "Fri, 01 Jan 2100 00:00:00 GMT"


class HostFilesTest(SiteHostTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        site = write_site(os.path.join(cls.tmp, "site"), {
            "video.bin": BIG, "small.bin": SMALL, "notes.txt": TEXT,
            "_atoll.toml": '[[headers]]\npath = "/notes"\nname = "X-Rule"\nvalue = "kept"\n'})
        cls.host.publish(site, "files", remote=True)

    def get(self, path, **headers):
        return self.host.get("files", path, headers=headers)

    def test_last_modified_and_if_modified_since(self):
        r = self.get("/small.bin")
        lm = r.header("Last-Modified")
        self.assertRegex(lm or "", r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertEqual(self.get("/small.bin", **{"If-Modified-Since": lm}).status, 304)
        self.assertEqual(self.get("/small.bin", **{"If-Modified-Since": LATER}).status, 304)
        self.assertEqual(self.get("/small.bin", **{"If-Modified-Since": OLD}).status, 200)
        self.assertEqual(self.get("/small.bin", **{"If-Modified-Since": "yesterday"}).status, 200)
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        r = self.get("/small.bin", **{"If-None-Match": '"other"', "If-Modified-Since": LATER})
        self.assertEqual(r.status, 200)

    def test_if_none_match_compares_whole_entity_tags(self):
        etag = self.get("/small.bin").header("ETag")
        inner = etag.strip('"')
        for value in (f'"{inner[:16]}"', f'"{inner[4:]}"', f'"x{inner}"', inner, f'"{inner}x"'):
            r = self.get("/small.bin", **{"If-None-Match": value})
            self.assertEqual((r.status, r.data), (200, SMALL), value)
        for value in (etag, f'"a", {etag}', f"W/{etag}", "*"):
            self.assertEqual(self.get("/small.bin", **{"If-None-Match": value}).status, 304, value)

    def test_if_match_and_if_unmodified_since(self):
        etag = self.get("/video.bin").header("ETag")
        for headers in ({"If-Match": '"no-match"'}, {"If-Unmodified-Since": OLD}):
            r = self.get("/video.bin", **headers)
            self.assertEqual(r.status, 412, headers)
            self.assertNotEqual(r.data, BIG)
        for headers in ({"If-Match": etag}, {"If-Match": "*"}, {"If-Unmodified-Since": LATER}):
            r = self.get("/video.bin", **headers)
            self.assertEqual((r.status, len(r.data)), (200, len(BIG)), headers)

    def test_a_single_range_of_a_large_file(self):
        r = self.get("/video.bin", Range="bytes=1000-1999")
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), f"bytes 1000-1999/{len(BIG)}")
        self.assertEqual(r.data, BIG[1000:2000])
        r = self.get("/video.bin", Range="bytes=-100")
        self.assertEqual((r.status, r.data), (206, BIG[-100:]))
        r = self.get("/video.bin", Range=f"bytes={len(BIG) - 10}-")
        self.assertEqual((r.status, r.data), (206, BIG[-10:]))

    def test_a_resumed_download_reassembles_the_file(self):
        got, size = b"", len(BIG)
        while len(got) < size:
            r = self.get("/video.bin", Range=f"bytes={len(got)}-{min(len(got) + 65535, size - 1)}")
            self.assertEqual(r.status, 206)
            got += r.data
        self.assertEqual(got, BIG)

    def test_multiple_ranges(self):
        r = self.get("/small.bin", Range="bytes=0-1,5-6")
        self.assertEqual(r.status, 206)
        m = re.match(r"multipart/byteranges; boundary=(\S+)", r.header("Content-Type"))
        self.assertIsNotNone(m)
        parts = [p for p in r.data.split(b"--" + m.group(1).encode()) if p.strip(b"-\r\n")]
        self.assertEqual(len(parts), 2)
        self.assertIn(b"Content-Range: bytes 0-1/100", parts[0])
        self.assertTrue(parts[0].endswith(b"\r\n\r\n01\r\n"), parts[0])
        self.assertTrue(parts[1].endswith(b"\r\n\r\n56\r\n"), parts[1])

    def test_unsatisfiable_range_is_416(self):
        r = self.get("/small.bin", Range="bytes=500-600")
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */100")

    def test_if_range(self):
        r = self.get("/video.bin")
        etag, lm = r.header("ETag"), r.header("Last-Modified")
        for validator in (etag, lm):
            self.assertEqual(self.get("/video.bin", Range="bytes=0-9", **{"If-Range": validator}).status, 206)
        for stale in ('"changed"', OLD, f"W/{etag}"):
            r = self.get("/video.bin", Range="bytes=0-9", **{"If-Range": stale})
            self.assertEqual((r.status, len(r.data)), (200, len(BIG)), stale)

    def test_ranges_come_from_the_identity_bytes(self):
        r = self.get("/notes.txt", Range="bytes=0-9", **{"Accept-Encoding": "br, gzip"})
        self.assertEqual((r.status, r.data), (206, TEXT[:10]))
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        r = self.get("/notes.txt", **{"Accept-Encoding": "gzip"})
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("X-Rule"), "kept", "the site's header rules still apply")

    def test_head_of_a_range(self):
        r = self.host.get("files", "/video.bin", method="HEAD", headers={"Range": "bytes=0-9"})
        self.assertEqual((r.status, r.data), (206, b""))
        self.assertEqual(r.header("Content-Length"), "10")


if __name__ == "__main__":
    unittest.main()
