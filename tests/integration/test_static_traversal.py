"""Path traversal against 'atoll serve --root': a corpus of encodings of "..",
NULs, backslashes, and symlinks that lead out of the root. The file outside
the root must never be returned, whatever the status."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from atoll_proc import AtollProcess
from wire import Closed, RawConnection

SECRET = b"TOP-SECRET-outside-the-root-7f3a"

# Request targets, sent byte for byte (no client normalises them).
CORPUS = [
    "/../secret.txt",
    "/../../secret.txt",
    "/sub/../../secret.txt",
    "/sub/../sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2e/secret.txt",
    "/%2e%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt",  # double encoding: a literal "%2e%2e" directory, not ".."
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/%5c..%5csecret.txt",
    "/sub\\..\\..\\secret.txt",
    "/%00",
    "/x.txt%00",
    "/x.txt%00.html",
    "/..%00/secret.txt",
    "/./secret.txt",
    "/.//..//secret.txt",
    "//../secret.txt",
    "/..;/secret.txt",
    "/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for '.'
    "/link-file",  # a symlink inside the root to the secret
    "/link-dir/secret.txt",  # a symlinked directory that leads out
    "/link-dir/",
    "/sub/link-up/secret.txt",  # ../.. as a symlink
    "/link-abs",  # an absolute symlink
    "/" + "../" * 30 + "secret.txt",
    "/" + "%2e%2e/" * 30 + "secret.txt",
    "http://x/../secret.txt",  # absolute-form target
    "http://x/%2e%2e/secret.txt",
]


class TraversalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="atoll-traversal-")
        cls.root = os.path.join(cls.base, "root")
        os.makedirs(os.path.join(cls.root, "sub"))
        os.makedirs(os.path.join(cls.base, "outside"))
        with open(os.path.join(cls.base, "secret.txt"), "wb") as f:
            f.write(SECRET)
        with open(os.path.join(cls.base, "outside", "secret.txt"), "wb") as f:
            f.write(SECRET)
        with open(os.path.join(cls.root, "x.txt"), "wb") as f:
            f.write(b"inside")
        with open(os.path.join(cls.root, "sub", "y.txt"), "wb") as f:
            f.write(b"inside sub")
        os.symlink("../secret.txt", os.path.join(cls.root, "link-file"))
        os.symlink("../outside", os.path.join(cls.root, "link-dir"))
        os.symlink("../..", os.path.join(cls.root, "sub", "link-up"))
        os.symlink(os.path.join(cls.base, "secret.txt"), os.path.join(cls.root, "link-abs"))
        os.symlink("x.txt", os.path.join(cls.root, "link-inside"))  # stays inside: fine to serve
        cls.srv = AtollProcess("atoll", "serve", "--root", cls.root, "--loops", "1",
                               port_arg=("--listen", "127.0.0.1:0")).start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.base, ignore_errors=True)
        assert rc == 0, f"atoll exited with {rc}: {cls.srv.stderr()!r}"

    def fetch_raw(self, target, method="GET"):
        """The whole exchange's bytes (and the status if a response came)."""
        with RawConnection(self.port) as c:
            c.send(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
            data = c.read_all()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
        return status, data

    def test_corpus_never_returns_the_outside_file(self):
        for target in CORPUS:
            for method in ("GET", "HEAD"):
                with self.subTest(target=target, method=method):
                    status, data = self.fetch_raw(target, method)
                    self.assertNotIn(SECRET, data)
                    self.assertIn(status, (301, 400, 403, 404), data[:300])
                    if status == 301:  # a redirect must stay on this site
                        location = [l for l in data.split(b"\r\n") if l.lower().startswith(b"location:")][0]
                        self.assertTrue(location.split(b":", 1)[1].strip().startswith(b"/"), location)

    def test_corpus_with_curl_path_as_is(self):
        for target in CORPUS:
            if not target.startswith("/") or "\\" in target:
                continue
            with self.subTest(target=target):
                out = subprocess.run(["curl", "-sS", "--path-as-is", "--max-time", "5",
                                      f"http://127.0.0.1:{self.port}{target}"], capture_output=True)
                self.assertNotIn(SECRET, out.stdout)

    def test_symlink_inside_the_root_is_served(self):
        status, data = self.fetch_raw("/link-inside")
        self.assertEqual(status, 200)
        self.assertTrue(data.endswith(b"inside"))

    def test_inside_files_still_served(self):
        for target, body in (("/x.txt", b"inside"), ("/sub/y.txt", b"inside sub"), ("/sub/../x.txt", None)):
            status, data = self.fetch_raw(target)
            if body is None:
                self.assertIn(status, (200, 400))  # ".." is refused even when it stays inside
            else:
                self.assertEqual(status, 200, target)
                self.assertTrue(data.endswith(body), target)

    def test_symlink_swapped_after_caching(self):
        # A file first served from inside, then replaced by a symlink that
        # leads out: the revalidation must not follow it out of the root.
        path = os.path.join(self.root, "swap.txt")
        with open(path, "wb") as f:
            f.write(b"harmless")
        self.assertEqual(self.fetch_raw("/swap.txt")[0], 200)
        os.unlink(path)
        os.symlink(os.path.join(self.base, "secret.txt"), path)
        # Ask repeatedly for longer than the revalidation interval (1 s).
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            status, data = self.fetch_raw("/swap.txt")
            self.assertNotIn(SECRET, data)
            time.sleep(0.1)
        self.assertTrue(self.srv.alive())


if __name__ == "__main__":
    unittest.main()
