"""`atoll reload` and `atoll upgrade` signal only a live master: one that
holds the lock on DATA/atoll.pid. A stale pid file naming some other process
(a reused pid) leaves that process alone, and a second `atoll serve` on the
same data directory is refused while the first one runs."""

import os
import shutil
import subprocess
import tempfile
import unittest

from atoll_proc import binary, run_atoll, wait_until
from site_host import SiteHost


class PidFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-pid-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_a_stale_pid_file_never_signals_the_process_it_names(self):
        os.makedirs(self.data)
        # An unrelated process that happens to have the pid a dead master left.
        bystander = subprocess.Popen(["sleep", "60"])
        try:
            with open(os.path.join(self.data, "atoll.pid"), "w") as f:
                f.write(f"{bystander.pid}\n")
            for command in ("reload", "upgrade"):
                p = run_atoll(command, "--data", self.data)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertIn("no running server found", p.stderr)
                self.assertIn("stale", p.stderr)
                self.assertIn(str(bystander.pid), p.stderr)
            self.assertIsNone(bystander.poll(), "the bystander was signalled")
        finally:
            bystander.kill()
            bystander.wait()

    def test_a_missing_pid_file_names_the_path(self):
        os.makedirs(self.data)
        p = run_atoll("reload", "--data", self.data)
        self.assertEqual(p.returncode, 1)
        self.assertIn(os.path.join(self.data, "atoll.pid"), p.stderr)

    def test_the_live_master_is_signalled_and_a_second_one_refused(self):
        host = SiteHost(self.data).start()
        try:
            with open(os.path.join(self.data, "atoll.pid")) as f:
                pid = int(f.read())
            self.assertEqual(pid, host.proc.pid)
            p = run_atoll("reload", "--data", self.data)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(f"pid {pid}", p.stdout)
            self.assertTrue(wait_until(lambda: b"reload: settings re-read" in host.stderr(), timeout=10),
                            host.stderr())

            second = subprocess.run([binary("atoll"), "serve", "--data", self.data, "--listen", "127.0.0.1:0",
                                     "--admin-listen", "127.0.0.1:0"],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(second.returncode, 1, second.stdout)
            self.assertIn(f"another atoll master (pid {pid}) holds {self.data}/atoll.pid", second.stderr)
            self.assertTrue(host.alive())
            with open(os.path.join(self.data, "atoll.pid")) as f:
                self.assertEqual(int(f.read()), pid, "the refused master left the pid file alone")
        finally:
            self.assertEqual(host.stop(), 0)
        self.assertFalse(os.path.exists(os.path.join(self.data, "atoll.pid")),
                         "a master that stops removes its pid file")


if __name__ == "__main__":
    unittest.main()
