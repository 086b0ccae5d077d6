"""Runs the real `atoll serve` site host for a test, and speaks to it.

    with SiteHost(data_dir) as host:
        host.publish(site_dir, "demo")          # `atoll publish` into DATA
        r = host.get("demo", "/")               # Host: demo.localhost:PORT
        status, body = host.admin("GET", "/api/sites")

The server listens on loopback port 0 for both the sites and the admin API;
the ports and the admin token come from its banner (or DATA/admin.token on a
later start). Demo sites are off (an empty --demo-sites directory), so a test
sees only what it published.
"""

import http.client
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import unittest

from atoll_proc import AtollProcess, binary, run_atoll

_SITES = re.compile(rb"serving sites on https?://([0-9.]+|\[[0-9a-fA-F:]+\]):(\d+) ")
_ADMIN = re.compile(rb"admin API on https?://([0-9.]+):(\d+)\n")

_help_cache = {}


def serve_supports(flag):
    """True if this build's `atoll serve` knows `flag` (read from --help)."""
    if "text" not in _help_cache:
        _help_cache["text"] = subprocess.run([binary("atoll"), "serve", "--help"], capture_output=True,
                                             text=True, timeout=10).stdout
    return re.search(r"(^|\s)" + re.escape(flag) + r"\b", _help_cache["text"]) is not None


def write_site(root, files):
    """Makes a site directory: {relative path: bytes or str}."""
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return root


def tar_gz(entries):
    """A .tar.gz for a deploy. entries: {name: bytes}, or a sequence of
    (name, bytes) for files and (name, tarfile type, linkname) for links,
    devices and the like."""
    if isinstance(entries, dict):
        entries = entries.items()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as t:
        for e in entries:
            info = tarfile.TarInfo(e[0])
            if len(e) == 2:
                info.size = len(e[1])
                t.addfile(info, io.BytesIO(e[1]))
            else:
                info.type, info.linkname = e[1], e[2]
                t.addfile(info)
    return buf.getvalue()


class Response:
    def __init__(self, r):
        self.status = r.status
        self.headers = r.headers
        self.data = r.read()

    def header(self, name):
        return self.headers.get(name)


class SiteHost(AtollProcess):
    """`atoll serve` on a data directory. Extra `args` follow the defaults."""

    def __init__(self, data, *args, loops=1, workers=1, demo_sites=None, exe="atoll"):
        self.data = data
        self.empty = tempfile.mkdtemp(prefix="atoll-no-demo-")
        argv = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", data,
                "--demo-sites", demo_sites or self.empty, "--access-log", "off", "--loops", str(loops)]
        # One worker process unless a test asks for more (test_host_workers).
        if serve_supports("--workers"):
            argv += ["--workers", str(workers)]
        super().__init__(exe, *argv, *args, port_arg=None, start_timeout=20.0)
        self.admin_port = None
        self.token = None

    def _ready(self, seen):
        sites, admin = _SITES.search(seen), _ADMIN.search(seen)
        if not (sites and admin):
            return False
        self.host, self.port = sites.group(1).decode().strip("[]"), int(sites.group(2))
        self.admin_port = int(admin.group(2))
        with open(os.path.join(self.data, "admin.token")) as f:
            self.token = f.read().strip()
        return True

    def stop(self, timeout=15.0):
        try:
            return super().stop(timeout)
        finally:
            shutil.rmtree(self.empty, ignore_errors=True)

    # --- the sites ----------------------------------------------------------------

    def connect(self, timeout=15):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, site, path, headers=None, method="GET", conn=None, host=None):
        """One request for `path` on `site` (NAME.localhost:PORT); a fresh
        connection unless `conn` is given."""
        own = conn is None
        c = conn or self.connect()
        try:
            h = {"Host": host or f"{site}.localhost:{self.port}"}
            h.update(headers or {})
            c.request(method, path, headers=h)
            return Response(c.getresponse())
        finally:
            if own:
                c.close()

    # --- the admin API ---------------------------------------------------------------

    def admin(self, method, path, body=None, token=True, content_type=None, headers=None):
        """(status, parsed JSON or raw bytes). `token`: True for the real
        one, None for no header, or a string to send instead."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        try:
            h = dict(headers or {})
            if token is True:
                h["Authorization"] = f"Bearer {self.token}"
            elif token is not None:
                h["Authorization"] = token
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                content_type = content_type or "application/json"
            if content_type:
                h["Content-Type"] = content_type
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            c.close()

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    # --- the command line -----------------------------------------------------------------

    def cli(self, *args, remote=False, check=True):
        """Runs `atoll ARGS` against this server's data directory (or, with
        `remote`, its admin API); returns the CompletedProcess."""
        target = ["--server", self.admin_url, "--token", self.token] if remote else ["--data", self.data]
        p = run_atoll(*args, *target, timeout=120)  # its log is checked even when failing was the point
        if check and p.returncode != 0:
            raise AssertionError(f"atoll {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def publish(self, site_dir, site, remote=False, check=True):
        return self.cli("publish", site_dir, "--site", site, remote=remote, check=check)

    # --- what is stored ------------------------------------------------------------------------

    def blob_count(self):
        blobs = os.path.join(self.data, "blobs")
        if not os.path.isdir(blobs):
            return 0
        return sum(len(os.listdir(os.path.join(blobs, d))) for d in os.listdir(blobs)
                   if os.path.isdir(os.path.join(blobs, d)))

    def db_rows(self, sql, *params):
        """Rows from DATA/atoll.db, read by a connection of our own."""
        db = sqlite3.connect(os.path.join(self.data, "atoll.db"), timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def stored(self):
        """What a refused request must leave unchanged: blobs, sites, deploys, files."""
        counts = self.db_rows("SELECT (SELECT count(*) FROM sites), (SELECT count(*) FROM deploys), "
                              "(SELECT count(*) FROM files)")[0]
        return {"blobs": self.blob_count(), "sites": counts[0], "deploys": counts[1], "files": counts[2],
                "tmp": len(os.listdir(os.path.join(self.data, "tmp")))}


class SiteHostTestCase(unittest.TestCase):
    """One `atoll serve` for a whole test class, in a temporary directory
    (`cls.tmp`, data in `cls.tmp/data`), which must stop with status 0.
    Subclasses may set `host_args` (extra flags) and `host_options`
    (SiteHost keywords)."""

    host_args = ()
    host_options = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"atoll-{cls.__name__}-")
        cls.host = SiteHost(os.path.join(cls.tmp, "data"), *cls.host_args, **cls.host_options).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"atoll serve exited with {rc}: {cls.host.stderr()!r}"
