"""`atoll serve --root DIR` (quick mode) runs under the same supervising
master as the site host: --workers N worker processes, a crashed worker
replaced, reload (SIGHUP) re-reading the config, upgrade (SIGUSR2) in place,
`atoll reload/upgrade --pid-file`. An option the mode cannot honour is
refused with a message naming it, never ignored."""

import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from test_supervision import ATOLL, CRASH_ENV, Load, become_subreaper, children, stop_master, wait_until

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) \(serving ")


class Quick:
    """A running `atoll serve --root`: its master, port and log."""

    def __init__(self, workers=None, extra=(), config_text=None, crashes=False):
        self.dir = tempfile.mkdtemp(prefix="atoll-quick-")
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        with open(os.path.join(self.root, "index.html"), "w") as f:
            f.write("<h1>quick</h1>\n")
        self.pid_file = os.path.join(self.dir, "atoll.pid")
        self.config = os.path.join(self.dir, "atoll.toml")
        argv = [ATOLL, "serve", "--listen", "127.0.0.1:0", "--access-log", "off", "--pid-file", self.pid_file]
        if config_text is not None:
            self.write_config(config_text)
            argv += ["--config", self.config]
        else:
            argv += ["--root", self.root]
        if workers:
            argv += ["--workers", str(workers)]
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*argv, *extra], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=CRASH_ENV if crashes else None)
        m = wait_until(lambda: LISTENING.search(self.output()), 15)
        if not m:
            self.stop(expect=None)
            raise AssertionError("atoll serve --root did not start:\n" + self.output())
        self.port = int(m.group(1))
        if not wait_until(lambda: self.get()[0] == 200, 10):
            self.stop(expect=None)
            raise AssertionError("atoll serve --root did not answer:\n" + self.output())

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text.replace("ROOT", self.root))

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def master_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def get(self, path="/"):
        """(status, Cache-Control) of one GET, or (None, None) if it failed."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            return r.status, r.getheader("Cache-Control")
        except OSError:
            return None, None

    def stop(self, expect=0, allow_restarts=False):
        return stop_master(self, expect, allow_restarts)


class QuickModeSupervisionTest(unittest.TestCase):
    def test_one_supervised_worker_by_default(self):
        q = Quick()
        try:
            self.assertIn("supervising 1 worker(s)", q.output())
            self.assertEqual(len(children(q.proc.pid)), 1)
            self.assertEqual(q.master_pid(), q.proc.pid, "the master holds --pid-file")
        finally:
            q.stop()

    def test_workers_are_supervised_and_a_crash_is_repaired(self):
        q = Quick(workers=2, crashes=True)
        try:
            self.assertIn("supervising 2 worker(s)", q.output())
            self.assertTrue(wait_until(lambda: len(children(q.proc.pid)) == 2, 10))
            load = Load(q.port, threads=2)
            self.assertTrue(wait_until(lambda: load.ok > 20, 10))
            victim = children(q.proc.pid)[0]
            os.kill(victim, signal.SIGSEGV)
            self.assertTrue(wait_until(lambda: len(children(q.proc.pid)) == 2 and
                                       victim not in children(q.proc.pid), 5), q.output())
            served = load.ok
            self.assertTrue(wait_until(lambda: load.ok > served + 50, 10), "service did not continue")
            load.stop()
            self.assertLessEqual(len(load.failures), 2, load.failures)  # in flight on the victim
            self.assertEqual(load.refused, 0)
            self.assertIn("killed by signal 11", q.output())
        finally:
            q.stop(expect=4, allow_restarts=True)  # a drain after a crash reports it

    def test_reload_rereads_the_config_file(self):
        q = Quick(config_text='root = "ROOT"\ncache_control = "max-age=1"\n')
        try:
            self.assertEqual(q.get(), (200, "max-age=1"))
            q.write_config('root = "ROOT"\ncache_control = "max-age=2"\n')
            p = subprocess.run([ATOLL, "reload", "--pid-file", q.pid_file], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(f"(pid {q.proc.pid})", p.stdout)
            self.assertTrue(wait_until(lambda: q.get() == (200, "max-age=2"), 10), q.output())
        finally:
            q.stop()

    def test_upgrade_in_place(self):
        become_subreaper()
        q = Quick(workers=1)
        try:
            old = q.master_pid()
            load = Load(q.port, threads=2)
            self.assertTrue(wait_until(lambda: load.ok > 20, 10))
            p = subprocess.run([ATOLL, "upgrade", "--pid-file", q.pid_file], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            new = wait_until(lambda: (n := q.master_pid()) and n != old and n, 10)
            self.assertTrue(new, "no new master\n" + q.output())
            self.assertEqual(q.proc.wait(timeout=20), 0, "the old master drained cleanly\n" + q.output())
            served = load.ok
            self.assertTrue(wait_until(lambda: load.ok > served + 50, 10), "no service after the upgrade")
            load.stop()
            self.assertEqual((load.failures, load.refused), ([], 0))
        finally:
            q.stop()


class QuickModeOptionsTest(unittest.TestCase):
    def serve(self, *args):
        return subprocess.run([ATOLL, "serve", "--listen", "127.0.0.1:0", *args], capture_output=True,
                              text=True, timeout=30)

    def test_settings_a_mode_cannot_honour_are_refused(self):
        tmp = tempfile.mkdtemp(prefix="atoll-quick-opts-")
        self.addCleanup(shutil.rmtree, tmp, True)
        config = os.path.join(tmp, "atoll.toml")
        with open(config, "w") as f:
            f.write(f'root = "{tmp}"\ndata = "{tmp}/data"\n')
        for args, named in ((["--root", tmp, "--data", os.path.join(tmp, "d")], "--data"),
                            (["--root", tmp, "--admin-listen", "127.0.0.1:0"], "--admin-listen"),
                            (["--root", tmp, "--base-domain", "example.test"], "--base-domain"),
                            (["--root", tmp, "--no-demo"], "--no-demo"),
                            (["--config", config], "--data"),
                            (["--data", os.path.join(tmp, "d"), "--cache-control", "max-age=9"], "--cache-control"),
                            (["--data", os.path.join(tmp, "d"), "--no-precompressed"], "--no-precompressed")):
            p = self.serve(*args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertIn(named, p.stderr, args)
            self.assertNotIn("listening", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(tmp, "d")), "nothing was created")
        self.assertFalse(os.path.exists(os.path.join(tmp, "data")))


if __name__ == "__main__":
    unittest.main()
