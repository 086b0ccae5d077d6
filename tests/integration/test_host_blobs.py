"""Blobs in batches: POST /api/blobs takes a .tar.gz of blobs named by their
SHA-256, checks every one before storing any, and `atoll publish --server`
sends a site's missing blobs that way (one request for thousands of small
files, not one each)."""

import hashlib
import os
import tempfile
import unittest

from site_host import SiteHostTestCase, tar_gz, write_site


class BlobBatchTest(SiteHostTestCase):
    def post(self, entries):
        return self.host.admin("POST", "/api/blobs", tar_gz(entries), content_type="application/gzip")

    def test_a_batch_is_stored_and_then_not_missing(self):
        blobs = {hashlib.sha256(b).hexdigest(): b for b in (b"one", b"two", b"three" * 1000)}
        before = self.host.blob_count()
        status, j = self.post(blobs)
        self.assertEqual(status, 201, j)
        self.assertEqual((j["received"], j["stored"]), (3, 3))
        self.assertEqual(self.host.blob_count(), before + 3)
        status, j = self.host.admin("POST", "/api/blobs/missing", {"hashes": list(blobs)})
        self.assertEqual(j["missing"], [])
        status, j = self.post(blobs)
        self.assertEqual((status, j["stored"]), (201, 0), "a blob already stored is not written again")

    def test_a_wrong_entry_refuses_the_whole_batch(self):
        good = b"good bytes"
        before = self.host.stored()
        for entries, why in (({hashlib.sha256(good).hexdigest(): good, "0" * 64: b"liar"}, "hashes to"),
                             ({hashlib.sha256(good).hexdigest(): good, "notahash": b"x"}, "not named by a SHA-256")):
            status, j = self.post(entries)
            self.assertEqual(status, 400, j)
            self.assertIn(why, j["error"])
        self.assertEqual(self.host.stored(), before, "nothing of a refused batch was stored")
        status, j = self.host.admin("POST", "/api/blobs", b"{}", content_type="application/json")
        self.assertEqual(status, 415, j)

    def test_publish_sends_the_missing_blobs_in_one_batch(self):
        site = write_site(tempfile.mkdtemp(dir=self.tmp), {f"p/{i}.html": f"<p>{i}</p>" for i in range(300)})
        p = self.host.publish(site, "batched", remote=True)
        self.assertRegex(p.stdout, r"deploy \d+ of batched is live: 300 files, 300 uploaded")
        self.assertEqual(self.host.get("batched", "/p/299").data, b"<p>299</p>")
        with open(os.path.join(site, "p", "7.html"), "w") as f:
            f.write("<p>seven</p>")
        p = self.host.publish(site, "batched", remote=True)
        self.assertRegex(p.stdout, r"300 files, 1 uploaded")
        self.assertEqual(self.host.get("batched", "/p/7").data, b"<p>seven</p>")


if __name__ == "__main__":
    unittest.main()
