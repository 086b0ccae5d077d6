"""A deploy onto a full disk (issue: the product, "bad input"): the data
directory is a 4 MiB tmpfs, and a deploy that does not fit fails as a
whole with 507 and a reason, leaves no partial file behind, and the live
deploy stays live; once it fits again, deploying works.

Mounting a tmpfs needs root (as the test machines and CI run); without it
this test fails and says so, rather than pretending to pass."""

import os
import shutil
import subprocess
import tempfile
import unittest

from site_host import SiteHost, tar_gz


class DiskFullTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mount = tempfile.mkdtemp(prefix="atoll-full-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", cls.mount],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(cls.mount)
            raise AssertionError(f"this test needs root to mount a small tmpfs: {r.stderr.strip()}")
        cls.data = os.path.join(cls.mount, "data")
        cls.host = SiteHost(cls.data).start()

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.host.stop()
        finally:
            subprocess.run(["umount", cls.mount], check=False)
            os.rmdir(cls.mount)
        assert rc == 0, f"atoll exited with {rc}: {cls.host.stderr()!r}"

    def deploy(self, files):
        return self.host.admin("POST", "/api/sites/full/deploys", tar_gz(files),
                               content_type="application/gzip")

    def deploys(self):
        status, j = self.host.admin("GET", "/api/sites/full/deploys")
        self.assertEqual(status, 200, j)
        return j

    def test_a_deploy_that_does_not_fit_changes_nothing(self):
        status, j = self.deploy({"index.html": b"<p>one</p>", "a.txt": b"first"})
        self.assertEqual(status, 201, j)
        before = self.deploys()

        # 6 MiB of incompressible bytes on a 4 MiB file system.
        status, j = self.deploy({"index.html": b"<p>two</p>", "big.bin": os.urandom(6 << 20)})
        self.assertEqual(status, 507, j)
        self.assertIn("No space left on device", j["error"])
        self.assertIn("the live deploy stays live", j["error"])

        # The old deploy is live, whole; the new one is nowhere.
        self.assertEqual(self.host.get("full", "/").data, b"<p>one</p>")
        self.assertEqual(self.host.get("full", "/a.txt").data, b"first")
        self.assertEqual(self.host.get("full", "/big.bin").status, 404)
        self.assertEqual(self.deploys(), before)
        # No half-written blob is left in the store's scratch space.
        self.assertEqual(os.listdir(os.path.join(self.data, "tmp")), [])

        # Space is back: a deploy that fits goes live.
        status, j = self.deploy({"index.html": b"<p>three</p>"})
        self.assertEqual(status, 201, j)
        self.assertEqual(self.host.get("full", "/").data, b"<p>three</p>")


if __name__ == "__main__":
    unittest.main()
