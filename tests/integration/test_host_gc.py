"""The store reports its size and `atoll gc` collects at once: old deploys
beyond --keep, blobs no kept deploy refers to (a deleted site's too), and the
leftovers of interrupted uploads, locally and through the admin API, with
the blobs of a publish still uploading kept for a grace period."""

import os
import re
import shutil
import tempfile
import time
import unittest

from atoll_proc import run_atoll
from site_host import SiteHost, write_site

USAGE = re.compile(r"store: (\d+) blobs, .* for (\d+) deploys; (\d+) unreferenced")


class GcTest(unittest.TestCase):
    def setUp(self):
        # A server each: the tests count every blob in the store.
        self.tmp = tempfile.mkdtemp(prefix="atoll-gc-")
        self.host = SiteHost(os.path.join(self.tmp, "data")).start()

    def tearDown(self):
        rc = self.host.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0, self.host.stderr())

    def publish_versions(self, site, versions):
        for v in range(versions):
            d = write_site(os.path.join(self.tmp, f"{site}-{v}"), {
                "index.html": f"<p>{site} version {v}</p>",
                "data.bin": os.urandom(3000),
                "shared.txt": "the same in every version\n"})
            self.host.publish(d, site, remote=True)

    def usage(self, remote):
        out = self.host.cli("store", remote=remote).stdout
        m = USAGE.search(out)
        self.assertIsNotNone(m, out)
        return {"blobs": int(m.group(1)), "deploys": int(m.group(2)), "unreferenced": int(m.group(3))}

    def test_store_size_and_gc_through_the_api(self):
        self.publish_versions("gca", 4)
        status, j = self.host.admin("GET", "/api/store")
        self.assertEqual(status, 200, j)
        self.assertEqual(j["blobs"], self.host.blob_count())
        self.assertGreaterEqual(j["disk_bytes"], j["bytes"] - j["blobs"] * 4096)
        self.assertGreater(j["bytes"], 4 * 3000)
        before = self.usage(remote=True)
        self.assertEqual(before["blobs"], j["blobs"])
        # The deploys are kept (10 by default); delete a site: its blobs are
        # unreferenced, and too young for the default grace.
        self.publish_versions("gcb", 1)
        self.assertEqual(self.host.admin("DELETE", "/api/sites/gcb")[0], 204)
        p = self.host.cli("gc", remote=True)
        self.assertIn("younger than 600s", p.stdout)
        self.assertEqual(self.host.blob_count(), before["blobs"] + 2, "gcb's index and data.bin stay")
        # --keep 1 --grace 0: only the live deploy and what it uses remain.
        p = self.host.cli("gc", "--keep", "1", "--grace", "0", remote=True)
        self.assertRegex(p.stdout, r"removed 3 old deploys, 8 blobs and 0 upload leftovers: [\d.]+ KiB freed")
        after = self.usage(remote=True)
        self.assertEqual((after["deploys"], after["unreferenced"]), (1, 0))
        self.assertEqual(after["blobs"], 3)
        self.assertEqual(self.host.blob_count(), 3)
        r = self.host.get("gca", "/")
        self.assertEqual((r.status, r.data), (200, b"<p>gca version 3</p>"))
        self.assertEqual(self.host.get("gca", "/shared.txt").status, 200)
        # The audit trail has it.
        status, j = self.host.admin("GET", "/api/audit?limit=5")
        gc = [e for e in j["entries"] if e["action"] == "gc"]
        self.assertTrue(gc, j)
        self.assertIn("3 deploys, 8 blobs", gc[0]["detail"])

    def test_local_gc_removes_upload_leftovers(self):
        self.publish_versions("gcc", 1)
        leftover = os.path.join(self.host.data, "tmp", "f" * 64 + ".1.2")
        with open(leftover, "wb") as f:
            f.write(b"half a blob" * 100)
        old = time.time() - 3600
        os.utime(leftover, (old, old))
        p = self.host.cli("gc")
        self.assertIn("and 1 upload leftovers", p.stdout)
        self.assertFalse(os.path.exists(leftover))
        self.assertEqual(self.usage(remote=False)["unreferenced"], 0)

    def test_bad_input_is_refused_with_the_rule(self):
        for body, rule in (({"keep": 0}, "'keep'"), ({"keep": "all"}, "'keep'"),
                           ({"grace_s": -1}, "'grace_s'"), ([1], "JSON object")):
            status, j = self.host.admin("POST", "/api/gc", body)
            self.assertEqual(status, 400, body)
            self.assertIn(rule, j["error"])
        p = self.host.cli("gc", "--keep", "0", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--keep", p.stderr)

    def test_commands_do_not_create_a_data_directory(self):
        missing = os.path.join(self.tmp, "missing")
        for cmd in ("store", "gc"):
            p = run_atoll(cmd, "--data", missing)
            self.assertEqual(p.returncode, 1, cmd)
            self.assertIn(f"no data directory at '{missing}'", p.stderr)
        self.assertFalse(os.path.exists(missing))


if __name__ == "__main__":
    unittest.main()
