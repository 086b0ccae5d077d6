"""The audit trail: every admin write (site, domains, certificate, deploy,
rollback, purge, delete) and every refused token is logged with time, peer,
site and result, and kept in the database (GET /api/audit); refused tokens
are rate-limited so a flood cannot fill the disk. Requests the HTTP parser
refuses are logged too, rate-limited."""

import time
import unittest

from atoll_proc import wait_until
from site_host import SiteHostTestCase, tar_gz
from wire import RawConnection


class AuditTest(SiteHostTestCase):
    def entries(self, site=""):
        status, j = self.host.admin("GET", f"/api/audit?limit=1000&site={site}")
        self.assertEqual(status, 200, j)
        return j["entries"]

    def test_every_admin_write_is_recorded_with_its_result(self):
        started = int(time.time())
        a = self.host.admin
        self.assertEqual(a("POST", "/api/sites", {"name": "audited", "domains": ["audited.test"]})[0], 201)
        self.assertEqual(a("PUT", "/api/sites/audited/domains", {"domains": ["audited.test", "www.audited.test"]})[0],
                         200)
        status, j = a("POST", "/api/sites/audited/deploys", tar_gz({"index.html": b"v1"}),
                      content_type="application/gzip")
        self.assertEqual(status, 201, j)
        first = j["deploy"]
        status, j = a("POST", "/api/sites/audited/deploys", tar_gz({"index.html": b"v2", "b.html": b"b"}),
                      content_type="application/gzip")
        second = j["deploy"]
        self.assertEqual(a("POST", "/api/sites/audited/deploys", tar_gz({"../x": b"x"}),
                           content_type="application/gzip")[0], 400)
        self.assertEqual(a("POST", "/api/sites/audited/rollback", {})[0], 200)
        self.assertEqual(a("POST", "/api/cache/purge")[0], 204)
        self.assertEqual(a("DELETE", "/api/sites/audited")[0], 204)
        got = [(e["action"], e["site"], e["status"]) for e in reversed(self.entries("audited"))]
        self.assertEqual(got, [("site.create", "audited", 201), ("site.domains", "audited", 200),
                               ("deploy", "audited", 201), ("deploy", "audited", 201),
                               ("deploy", "audited", 400), ("rollback", "audited", 200),
                               ("site.delete", "audited", 204)])
        details = [e["detail"] for e in reversed(self.entries("audited"))]
        self.assertEqual(details[2], f"deploy {first}, 1 files")
        self.assertEqual(details[3], f"deploy {second}, 2 files")
        self.assertIn("climbs out with '..'", details[4])
        self.assertEqual(details[5], f"deploy {first} live")
        for e in self.entries("audited"):
            self.assertEqual(e["peer"], "127.0.0.1")
            self.assertGreaterEqual(e["at"], started)
        self.assertIn("purge", [e["action"] for e in self.entries()])
        # And in the log, one line each.
        log = self.host.stderr().decode()
        self.assertRegex(log, rf"audit: 127\.0\.0\.1 deploy site=audited -> 201: deploy {second}, 2 files")
        self.assertRegex(log, r"warn .*audit: 127\.0\.0\.1 deploy site=audited -> 400: ")
        # Reads are not recorded.
        self.assertNotIn("GET", " ".join(e["action"] for e in self.entries()))

    def test_refused_tokens_are_recorded_and_a_flood_is_bounded(self):
        before = len([e for e in self.entries() if e["action"] == "auth.refused"])
        self.assertEqual(self.host.admin("GET", "/api/sites", token=None)[0], 401)
        self.assertEqual(self.host.admin("DELETE", "/api/sites/x", token="Bearer guess")[0], 401)
        refused = [e for e in self.entries() if e["action"] == "auth.refused"]
        self.assertEqual(len(refused) - before, 2)
        self.assertEqual(refused[0]["detail"], "DELETE /api/sites/x: wrong token")
        self.assertEqual(refused[1]["detail"], "GET /api/sites: no token")
        self.assertEqual(refused[0]["status"], 401)
        self.assertNotIn("guess", str(refused), "the wrong token itself is not stored")
        # A flood: 60 in a burst; at most 10 a second are recorded.
        started = time.monotonic()
        for _ in range(60):
            self.host.admin("GET", "/api/sites", token="Bearer flood")
        seconds = int(time.monotonic() - started) + 1
        flood = [e for e in self.entries() if e["action"] == "auth.refused"][: 60]
        recorded = len([e for e in flood if e["detail"].startswith("GET /api/sites: wrong token")])
        self.assertLessEqual(recorded, 10 * (seconds + 1))
        # The next refusal after the burst's second says how many were left out.
        def summary():
            self.host.admin("GET", "/api/sites", token="Bearer after")
            return any("more not recorded" in e["detail"] for e in self.entries())
        self.assertTrue(wait_until(summary, timeout=5, interval=0.2))

    def test_parser_refusals_are_logged_and_rate_limited(self):
        c = RawConnection(self.host.port, timeout=5)
        self.addCleanup(c.close)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        self.assertEqual(c.read_response().status, 431)
        self.assertTrue(wait_until(lambda: b"refused a request from 127.0.0.1" in self.host.stderr(), timeout=5))
        self.assertIn(b": 431 request head larger than", self.host.stderr())
        before = self.host.stderr().count(b"refused a request from")
        started = time.monotonic()
        for _ in range(80):
            r = RawConnection(self.host.port, timeout=5)
            r.send(b"GET /a/../../etc/passwd HTTP/1.1\nHost: x\n\n")
            r.read_response()
            r.close()
        seconds = int(time.monotonic() - started) + 1
        logged = self.host.stderr().count(b"refused a request from") - before
        self.assertGreater(logged, 0)
        self.assertLessEqual(logged, 20 * (seconds + 1), "the log is rate-limited")


if __name__ == "__main__":
    unittest.main()
