"""`atoll serve --workers 3`: what several workers share. Every scrape of
/metrics, whichever worker answers it, counts the requests of all of them;
a deploy through any worker's admin API is served by every worker as soon
as the API has answered; a cache purge reaches every worker."""

import re
import shutil
import tempfile
import unittest

from site_host import SiteHost, tar_gz

WORKERS = 3


class WorkersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = tempfile.mkdtemp(prefix="atoll-workers-")
        cls.host = SiteHost(cls.data, workers=WORKERS).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        shutil.rmtree(cls.data, ignore_errors=True)
        assert rc == 0, f"atoll exited with {rc}: {cls.host.stderr()!r}"

    def deploy(self, site, files):
        status, j = self.host.admin("POST", f"/api/sites/{site}/deploys", tar_gz(files),
                                    content_type="application/gzip")
        self.assertIn(status, (200, 201), j)
        return j

    def metric(self, text, name):
        m = re.search(r"^" + re.escape(name) + r" (\d+)$", text, re.M)
        return int(m.group(1)) if m else 0

    def scrape(self):
        status, text = self.host.admin("GET", "/metrics")
        self.assertEqual(status, 200)
        return text.decode()

    def test_every_scrape_counts_every_worker(self):
        self.deploy("counted", {"index.html": b"<p>counted</p>"})
        key = 'atoll_requests_total{site="counted",status="200"}'
        before = [self.metric(self.scrape(), key) for _ in range(3)]
        self.assertEqual(len(set(before)), 1, before)
        n = 60
        for _ in range(n):  # a fresh connection each: the kernel spreads them over the workers
            self.assertEqual(self.host.get("counted", "/").status, 200)
        # Scrapes on fresh connections reach different workers too; each must
        # see all n requests, not only those its own worker answered.
        for _ in range(8):
            text = self.scrape()
            self.assertEqual(self.metric(text, key) - before[0], n)
            workers = re.findall(r'^atoll_connections\{worker="(\d+)"\} \d+$', text, re.M)
            self.assertEqual(sorted(workers), [str(w) for w in range(WORKERS)])
            lags = re.findall(r'^atoll_loop_lag_seconds\{worker="(\d+)"\} (\d+\.\d{3})$', text, re.M)
            self.assertEqual(sorted(w for w, _ in lags), [str(w) for w in range(WORKERS)])
            self.assertTrue(all(float(v) < 60 for _, v in lags), lags)

    def test_a_deploy_is_live_in_every_worker_when_the_api_answers(self):
        for version in range(1, 6):
            body = f"<p>version {version}</p>".encode()
            self.deploy("moving", {"index.html": body})
            # No waiting: the API answered, so every worker serves it now.
            seen = {self.host.get("moving", "/").data for _ in range(30)}
            self.assertEqual(seen, {body}, f"after deploy {version}")

    def test_a_rollback_is_live_in_every_worker_when_the_api_answers(self):
        self.deploy("back", {"index.html": b"one"})
        self.deploy("back", {"index.html": b"two"})
        status, j = self.host.admin("POST", "/api/sites/back/rollback", b"{}",
                                    content_type="application/json")
        self.assertEqual(status, 200, j)
        seen = {self.host.get("back", "/").data for _ in range(30)}
        self.assertEqual(seen, {b"one"})

    def test_a_purge_reaches_every_worker(self):
        self.deploy("purged", {"index.html": b"cached"})
        for _ in range(30):  # every worker now has the path in its cache
            self.host.get("purged", "/")
        misses = self.metric(self.scrape(), "atoll_cache_misses_total")
        for _ in range(30):
            self.host.get("purged", "/")
        self.assertEqual(self.metric(self.scrape(), "atoll_cache_misses_total"), misses)
        status, _ = self.host.admin("POST", "/api/cache/purge")
        self.assertEqual(status, 204)
        for _ in range(30):
            self.host.get("purged", "/")
        # One miss per worker (30 fresh connections reach all three).
        self.assertEqual(self.metric(self.scrape(), "atoll_cache_misses_total") - misses, WORKERS)


if __name__ == "__main__":
    unittest.main()
