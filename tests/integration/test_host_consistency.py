"""Deploys under load: versions of a site are published one after another
(through the admin API and by `atoll publish` into the data directory) while
client threads fetch its files. Every body must be wholly one version's file
(with the ETag of exactly those bytes), no request may fail, and on one
connection a path never goes back to an older version."""

import gzip
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import threading
import time
import unittest

from site_host import SiteHost, tar_gz, write_site

VERSIONS = 24
CLIENTS = 4
# Small files are served from memory, the big one with sendfile (over the
# 16 KiB inline limit); text files also have precompressed variants.
PATHS = {"/": "index.html", "/about": "about.html", "/app.js": "app.js", "/big.css": "big.css",
         "/img.bin": "img.bin"}
REPEAT = {"index.html": 20, "about.html": 3, "app.js": 60, "big.css": 1500, "img.bin": 40}


def content(name, version):
    line = f"{name} version {version:04d} " + "x" * (version % 7) + "\n"
    return (line * REPEAT[name]).encode()


def version_of(name, body):
    """The version a body claims; None if it is not exactly that version's file."""
    m = re.match(rb"([a-z.]+) version (\d{4}) ", body)
    if not m or m.group(1).decode() != name:
        return None
    v = int(m.group(2))
    return v if body == content(name, v) else None


def archive(version):
    return tar_gz([(name, content(name, version)) for name in REPEAT])


class HostConsistencyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="atoll-host-consistency-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.host = SiteHost(os.path.join(self.tmp, "data"), loops=2).start()
        self.addCleanup(self.stop)
        self.site = os.path.join(self.tmp, "site")

    def stop(self):
        self.assertEqual(self.host.stop(), 0, self.host.stderr())

    def publish(self, version):
        if version % 2:
            status, j = self.host.admin("POST", "/api/sites/race/deploys", archive(version),
                                        content_type="application/gzip")
            self.assertEqual(status, 201, j)
        else:
            write_site(self.site, {name: content(name, version) for name in REPEAT})
            self.host.publish(self.site, "race")

    def client(self, n, done, problems, seen, counts):
        conn = self.host.connect(timeout=30)
        last = {}
        i = n
        try:
            while not done.is_set():
                path = list(PATHS)[i % len(PATHS)]
                name = PATHS[path]
                use_gzip = (i // len(PATHS)) % 2 == 1
                i += 1
                headers = {"Host": f"race.localhost:{self.host.port}"}
                if use_gzip:
                    headers["Accept-Encoding"] = "gzip"
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    problems.append(f"client {n}: {path}: status {r.status}: {body[:200]!r}")
                    continue
                if r.getheader("ETag") != '"' + hashlib.sha256(body).hexdigest() + '"':
                    problems.append(f"client {n}: {path}: the ETag is not the body's hash")
                if r.getheader("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                v = version_of(name, body)
                if v is None:
                    problems.append(f"client {n}: {path}: not wholly one version: {body[:80]!r}...")
                    continue
                if v < last.get(path, 0):
                    problems.append(f"client {n}: {path}: went back from version {last[path]} to {v}")
                last[path] = v
                seen.add(v)
                counts[n] += 1
        except Exception as e:  # a dropped connection is a failure too
            problems.append(f"client {n}: {type(e).__name__}: {e}")
        finally:
            conn.close()

    def test_every_response_is_one_whole_version(self):
        self.publish(1)
        done = threading.Event()
        problems, seen, counts = [], set(), [0] * CLIENTS
        threads = [threading.Thread(target=self.client, args=(n, done, problems, seen, counts))
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            for version in range(2, VERSIONS + 1):
                self.publish(version)
        finally:
            # The last deploy may be a local one: let the clients see it
            # (a poll away) before they stop.
            deadline = time.monotonic() + 5
            while VERSIONS not in seen and time.monotonic() < deadline and not problems:
                time.sleep(0.02)
            done.set()
            for t in threads:
                t.join(60)
        self.assertEqual(problems[:20], [])
        self.assertIn(VERSIONS, seen, "the clients saw the last version")
        self.assertTrue(all(counts), f"every client got answers: {counts}")
        self.assertGreater(len(seen), VERSIONS // 3, f"the clients saw only versions {sorted(seen)}")
        status, text = self.host.admin("GET", "/metrics")
        self.assertNotRegex(text.decode(), r'atoll_requests_total\{site="race",status="5\d\d"\}')


if __name__ == "__main__":
    unittest.main()
