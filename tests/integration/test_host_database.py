"""'atoll serve' when its SQLite database is missing, unusable or locked.

At start: a clear error naming DATA/atoll.db. While running: a writer in
another process holding the write lock (`sqlite3 atoll.db 'BEGIN EXCLUSIVE;
...'`) does not stop the sites (WAL readers never wait for writers), and a
deploy meanwhile fails with 503 and records nothing; a process holding the
WAL index's locks, so that no read can begin, leaves the paths already in
the resolver cache served and answers the rest 503 until it lets go.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from atoll_proc import binary
from site_host import SiteHost, serve_supports, write_site

# Holds POSIX locks on the WAL index (DATA/atoll.db-shm) of SQLite: bytes
# 120-127 are the write, checkpoint, recovery and five read-mark locks. With
# all of them held exclusively, no connection can begin a read transaction;
# SQLite retries for about ten seconds, then reports SQLITE_PROTOCOL.
_HOLD_SHM_LOCKS = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120, os.SEEK_SET)
print("locked", flush=True)
sys.stdin.read()
"""


class Holder:
    """A subprocess holding a lock until release(); it prints `ready` once
    the lock is held."""

    def __init__(self, argv, script, ready):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        if script:
            self.proc.stdin.write(script)
            self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        if line != ready:
            self.release()
            raise RuntimeError(f"the lock holder said {line!r}: {self.proc.stderr.read()!r}")

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class UnusableDatabaseTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-host-db-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.empty = os.path.join(self.tmp, "empty")
        os.mkdir(self.empty)

    def serve(self, data):
        argv = [binary("atoll"), "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", data,
                "--demo-sites", self.empty, "--access-log", "off"]
        if serve_supports("--workers"):
            argv += ["--workers", "1"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def test_database_that_cannot_be_opened(self):
        data = os.path.join(self.tmp, "data")
        os.makedirs(os.path.join(data, "atoll.db"))  # a directory where the file should be
        p = self.serve(data)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"'{data}/atoll.db'", p.stderr)
        self.assertIn("cannot be opened", p.stderr)

    def test_file_that_is_not_a_database(self):
        data = os.path.join(self.tmp, "data")
        os.makedirs(data)
        with open(os.path.join(data, "atoll.db"), "wb") as f:
            f.write(b"not a database, but some text long enough to fill its header page" * 100)
        p = self.serve(data)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"'{data}/atoll.db'", p.stderr, "the error names the file")
        self.assertIn("not a database", p.stderr)
        for cmd in (["sites"], ["deploys", "--site", "x"], ["rollback", "--site", "x"]):
            p = subprocess.run([binary("atoll"), *cmd, "--data", data], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, cmd)
            self.assertIn(f"'{data}/atoll.db'", p.stderr, cmd)


class LockedDatabaseTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-host-lock-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.site = write_site(os.path.join(self.tmp, "site"), {
            f"page{i}.html": f"<p>page {i}</p>" for i in range(10)})
        self.host = SiteHost(os.path.join(self.tmp, "data")).start()
        self.addCleanup(self.stop)
        self.host.publish(self.site, "demo", remote=True)
        self.db = os.path.join(self.host.data, "atoll.db")

    def stop(self):
        self.assertEqual(self.host.stop(), 0, self.host.stderr())

    def page(self, i, conn=None):
        r = self.host.get("demo", f"/page{i}", conn=conn)
        return r.status, r.data

    def test_a_writer_holding_the_lock_does_not_stop_the_sites(self):
        conn = self.host.connect(timeout=30)
        self.addCleanup(conn.close)
        self.assertEqual(self.page(0, conn), (200, b"<p>page 0</p>"))  # warm
        holder = Holder(["sqlite3", "-batch", self.db], "BEGIN EXCLUSIVE;\nUPDATE meta SET value = value;\n"
                        "SELECT 'held';\n", "held")
        self.addCleanup(holder.release)
        before = self.host.stored()
        self.assertEqual(self.page(0, conn), (200, b"<p>page 0</p>"))
        for i in range(1, 10):  # cold: WAL readers do not wait for the writer
            self.assertEqual(self.page(i, conn), (200, f"<p>page {i}</p>".encode()))
            self.assertEqual(self.page(i), (200, f"<p>page {i}</p>".encode()), "on a new connection too")

        # A deploy needs the write lock: it waits SQLite's busy timeout, then
        # fails with 503 and a message that says why.
        write_site(self.site, {"page0.html": "<p>page 0 v2</p>"})
        started = time.monotonic()
        status, j = self.host.admin("POST", "/api/sites/demo/deploys",
                                    {"files": {"page1.html": "%064x" % 0}})  # refused before any lock: 400
        self.assertEqual(status, 400, j)
        p = self.host.publish(self.site, "demo", check=False)  # local: writes the database itself
        self.assertEqual(p.returncode, 1)
        self.assertIn("locked", p.stderr)
        p = self.host.publish(self.site, "demo", remote=True, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"HTTP 503: .*locked")
        self.assertLess(time.monotonic() - started, 30)
        after = self.host.stored()
        self.assertEqual((after["sites"], after["deploys"], after["files"]),
                         (before["sites"], before["deploys"], before["files"]), "no deploy was recorded")
        self.assertEqual(self.page(0, conn), (200, b"<p>page 0</p>"), "the old deploy is still live")

        holder.release()
        self.host.publish(self.site, "demo", remote=True)
        self.assertEqual(self.page(0, conn), (200, b"<p>page 0 v2</p>"))

    def test_no_reads_possible_keeps_cached_paths_and_503s_the_rest(self):
        conn = self.host.connect(timeout=60)
        self.addCleanup(conn.close)
        for i in range(3):  # warm pages 0-2 (and their 404 twin) in this connection's loop
            self.assertEqual(self.page(i, conn), (200, f"<p>page {i}</p>".encode()))
        self.assertEqual(self.host.get("demo", "/nope", conn=conn).status, 404)
        holder = Holder([sys.executable, "-c", _HOLD_SHM_LOCKS, self.db + "-shm"], None, "locked")
        self.addCleanup(holder.release)

        started = time.monotonic()
        for i in range(3):
            self.assertEqual(self.page(i, conn), (200, f"<p>page {i}</p>".encode()), "a cached path is served")
        self.assertLess(time.monotonic() - started, 2.0, "without touching the database")

        r = self.host.get("demo", "/page7", conn=conn)
        self.assertEqual(r.status, 503, r.data)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertIn(b"database", r.data)
        self.assertRegex(self.host.stderr().decode(), r"demo /page7: .*database")
        self.assertEqual(self.page(1, conn), (200, b"<p>page 1</p>"), "still served after the failure")

        holder.release()
        self.assertEqual(self.page(7, conn), (200, b"<p>page 7</p>"), "served once the database is back")
        status, text = self.host.admin("GET", "/metrics")
        m = re.search(rb"atoll_database_errors_total (\d+)", text)
        self.assertGreaterEqual(int(m.group(1)), 1)


if __name__ == "__main__":
    unittest.main()
