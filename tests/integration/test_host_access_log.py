"""`atoll serve --access-log FILE|-|off --access-log-format json|combined`:
the access log every other host test turns off.

include/atoll/web/access_log.hpp documents the JSON fields (time, method,
target, status, bytes, duration_ms, request_id, peer, host, user_agent,
referer), the combined format (nginx's default: no Host in it), '-' for
stdout, a file appended and created 0640, and a writer thread that batches
lines (flush_ms 100): lines are waited for, bounded, on the file or stdout.

SiteHost passes "--access-log off"; CLI11 refuses a second --access-log
("At Most 1 required but received 2"), so LoggingHost rewrites that value in
the argv instead of appending another."""

import datetime
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import unittest
import uuid

from atoll_proc import wait_until
from site_host import SiteHost, write_site

FIELDS = {"time", "method", "target", "status", "bytes", "duration_ms", "request_id", "peer", "host",
          "user_agent", "referer"}
INDEX = "<!doctype html><title>logged</title><p>the logged site</p>\n"
DATA = "x" * 3000 + "\n"
LOG_WAIT = 5.0  # flush_ms is 100: a line is due in a tenth of that

# nginx's combined: $remote_addr - $remote_user [$time_local] "$request" $status
# $body_bytes_sent "$http_referer" "$http_user_agent"
_Q = r'"((?:[^"\\]|\\.)*)"'
COMBINED = re.compile(r'^(\S+) - (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
                      + _Q + r' (\d{3}) (\d+|-) ' + _Q + ' ' + _Q + r'$')


class LoggingHost(SiteHost):
    """SiteHost with the access log on: `log` is a path, '-' or 'off';
    `fmt` None leaves --access-log-format unset (the default). `log` None
    drops SiteHost's "--access-log off" so the built-in default applies."""

    def __init__(self, data, log, fmt=None, *args):
        super().__init__(data, *args)
        i = self.argv.index("--access-log")
        if log is None:
            del self.argv[i:i + 2]
        else:
            self.argv[i + 1] = log
        if fmt is not None:
            self.argv += ["--access-log-format", fmt]


def lines_of(data):
    return [l for l in data.split(b"\n") if l]


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def close_to_now(test, when):
    now = datetime.datetime.now(datetime.timezone.utc)
    test.assertLess(abs((now - when).total_seconds()), 60, f"{when} is not now ({now})")


def raw_request(port, head):
    """Sends `head` (bytes: a whole request) and returns the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        parts = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)


def request_id_of(raw_response):
    m = re.search(rb"\r\nX-Request-Id: ([^\r]+)\r\n", raw_response, re.I)
    return m.group(1).decode() if m else None


class HostTestCase(unittest.TestCase):
    """One LoggingHost per class, with one published site "logged"."""

    log_name = "access.log"
    fmt = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-access-log-")
        site = write_site(os.path.join(cls.tmp, "site"), {"index.html": INDEX, "data.txt": DATA})
        cls.log = os.path.join(cls.tmp, cls.log_name) if cls.log_name not in ("-", "off", None) else cls.log_name
        cls.host = LoggingHost(os.path.join(cls.tmp, "data"), cls.log, cls.fmt).start()
        try:
            cls.host.publish(site, "logged", remote=True)  # live at once
        except BaseException:
            cls.host.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.host.stop()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, site="logged", **kw):
        return self.host.get(site, path, **kw)

    def content(self):
        return read(self.log)

    def wait_for(self, markers, content=None):
        """The log's content once every marker (bytes) is in it; fails after LOG_WAIT."""
        content = content or self.content
        got = wait_until(lambda: all(m in content() for m in markers) and content(), timeout=LOG_WAIT)
        missing = [m for m in markers if m not in (got or b"")]
        self.assertFalse(missing, f"not logged within {LOG_WAIT} s: {missing!r}; log: {content()[-3000:]!r}")
        return got


class JsonLines:
    """Helpers for the JSON format."""

    def parse_all(self, data):
        """Every line must be one JSON object (UTF-8, RFC 8259) with the documented fields."""
        records = []
        for line in lines_of(data):
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError as e:  # UnicodeDecodeError is a ValueError too
                self.fail(f"not a JSON line ({e}): {line!r}")
            self.assertIsInstance(rec, dict, line)
            self.assertEqual(set(rec), FIELDS, line)
            records.append(rec)
        return records

    def by_id(self, records, rid):
        found = [r for r in records if r["request_id"] == rid]
        self.assertEqual(len(found), 1, f"request {rid} logged {len(found)} times")
        return found[0]

    def check_common(self, rec):
        self.assertEqual(rec["peer"], "127.0.0.1")
        self.assertIsInstance(rec["status"], int)
        self.assertIsInstance(rec["bytes"], int)
        self.assertIsInstance(rec["duration_ms"], (int, float))
        self.assertGreaterEqual(rec["duration_ms"], 0)
        self.assertLess(rec["duration_ms"], 10_000)
        self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        when = datetime.datetime.strptime(rec["time"].rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        close_to_now(self, when.replace(tzinfo=datetime.timezone.utc))


class JsonFileTest(HostTestCase, JsonLines):
    """--access-log FILE, default format (json)."""

    def test_lines_describe_each_request(self):
        marker = uuid.uuid4().hex
        ua = f"atoll-test/{marker}"
        cases = [  # (method, path, site, expected status, expected body)
            ("GET", "/", "logged", 200, INDEX.encode()),
            ("GET", f"/missing-{marker}.txt", "logged", 404, None),
            ("GET", f"/data.txt?q={marker}&x=%20y", "logged", 200, DATA.encode()),
            ("HEAD", "/data.txt", "logged", 200, b""),
            ("GET", "/", "nosuch", 404, None),  # an unknown host: the host's own 404 page
        ]
        sent = []
        for method, path, site, status, body in cases:
            r = self.get(path, site=site, method=method,
                         headers={"User-Agent": ua, "Referer": f"http://ref.example/{marker}"})
            self.assertEqual(r.status, status, (method, path, site))
            if body is not None:
                self.assertEqual(r.data, body)
            rid = r.header("X-Request-Id")
            self.assertRegex(rid or "", r"^[0-9a-f]{20}$", "the server sends a request id")
            sent.append((method, path, site, r, rid))
        self.assertEqual(len({s[4] for s in sent}), len(sent), "request ids repeat")

        records = self.parse_all(self.wait_for([rid.encode() for *_, rid in sent]))
        for method, path, site, r, rid in sent:
            with self.subTest(method=method, path=path, site=site):
                rec = self.by_id(records, rid)
                self.check_common(rec)
                self.assertEqual(rec["method"], method)
                self.assertEqual(rec["target"], path)  # the query string included, undecoded
                self.assertEqual(rec["status"], r.status)
                # bytes: the body sent (HEAD sends none), as Content-Length says.
                self.assertEqual(rec["bytes"], 0 if method == "HEAD" else len(r.data))
                if method == "HEAD":
                    self.assertGreater(int(r.header("Content-Length")), 0)
                self.assertEqual(rec["host"], f"{site}.localhost")  # without the port
                self.assertEqual(rec["user_agent"], ua)
                self.assertEqual(rec["referer"], f"http://ref.example/{marker}")

    def test_keep_alive_requests_each_logged_in_order(self):
        c = self.host.connect()
        ids = []
        try:
            for i in range(5):
                r = self.get(f"/?n={i}", conn=c)
                self.assertEqual(r.status, 200)
                ids.append(r.header("X-Request-Id"))
        finally:
            c.close()
        self.assertEqual(len(set(ids)), 5)
        records = self.parse_all(self.wait_for([i.encode() for i in ids]))
        order = [r["request_id"] for r in records if r["request_id"] in ids]
        self.assertEqual(order, ids, "one line per request, in the order they were answered")
        for i, rid in enumerate(ids):
            rec = self.by_id(records, rid)
            self.assertEqual(rec["target"], f"/?n={i}")
            self.assertEqual(rec["user_agent"], "")  # http.client sends none: empty, not missing
            self.assertEqual(rec["referer"], "")

    def test_incoming_request_id_kept_if_sane(self):
        # include/atoll/web/request_id.hpp: 1-128 of A-Z a-z 0-9 - _ . : is kept...
        sane = f"trace-{uuid.uuid4().hex}_x.y:z"
        r = self.get("/", headers={"X-Request-Id": sane})
        self.assertEqual(r.header("X-Request-Id"), sane)
        # ...anything else is replaced, so a client cannot write into the log.
        evil = f"evil {uuid.uuid4().hex}\",\"status\":999"
        r2 = self.get("/", headers={"X-Request-Id": evil})
        replaced = r2.header("X-Request-Id")
        self.assertRegex(replaced, r"^[0-9a-f]{20}$")
        records = self.parse_all(self.wait_for([sane.encode(), replaced.encode()]))
        self.assertEqual(self.by_id(records, sane)["status"], 200)
        self.assertEqual(self.by_id(records, replaced)["status"], 200)
        self.assertNotIn(evil.split()[1].encode(), self.content())

    def test_escaping_keeps_one_json_object_per_line(self):
        marker = uuid.uuid4().hex
        ua = f'quote " backslash \\ tab \t brace }} {marker} caf\u00e9 \u2603'
        r = self.get("/", headers={"User-Agent": ua.encode("utf-8"),
                                             "Referer": f'"{marker}"\\'})
        rid = r.header("X-Request-Id")
        records = self.parse_all(self.wait_for([rid.encode()]))
        rec = self.by_id(records, rid)
        self.assertEqual(rec["user_agent"], ua)  # UTF-8 passes through, the rest is escaped
        self.assertEqual(rec["referer"], f'"{marker}"\\')

    def test_file_created_0640(self):
        self.get("/")  # (the file exists from the start; this just uses it)
        mode = stat.S_IMODE(os.stat(self.log).st_mode)
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(mode, 0o640 & ~umask, oct(mode))


class JsonNonUtf8Test(HostTestCase, JsonLines):
    """A header value that is not UTF-8, in a log of its own (a broken line
    would fail every other test reading the same file)."""

    def test_header_bytes_that_are_not_utf8_still_make_valid_json(self):
        # obs-text (0x80-0xFF) is legal in a header value (RFC 9110 §5.5) but
        # is not UTF-8: copied raw, it makes the line invalid JSON.
        marker = uuid.uuid4().hex
        resp = raw_request(self.host.port, (f"GET /?m={marker} HTTP/1.1\r\n"
                                            f"Host: logged.localhost:{self.host.port}\r\n").encode()
                           + b"User-Agent: latin1 \xe9t\xe9 \xff\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200 "), resp[:200])
        rid = request_id_of(resp)
        data = self.wait_for([rid.encode()])
        line = [l for l in lines_of(data) if rid.encode() in l][0]
        try:
            rec = json.loads(line.decode("utf-8"))
        except ValueError as e:
            self.fail(f"the line for a request with a Latin-1 User-Agent is not JSON ({e}): {line!r}")
        self.assertEqual(rec["target"], f"/?m={marker}")
        self.assertTrue(rec["user_agent"].startswith("latin1 "), rec["user_agent"])


class JsonAppendTest(unittest.TestCase, JsonLines):
    """A log file that exists is appended to, across restarts, and everything
    queued is written by the time the server has exited."""

    def test_appends_and_flushes_on_stop(self):
        tmp = tempfile.mkdtemp(prefix="atoll-access-log-append-")
        try:
            site = write_site(os.path.join(tmp, "site"), {"index.html": INDEX})
            log = os.path.join(tmp, "access.log")
            with open(log, "wb") as f:
                f.write(b"a line from before\n")
            ids = []
            for run in range(2):
                host = LoggingHost(os.path.join(tmp, "data"), log, "json").start()
                try:
                    if run == 0:
                        host.publish(site, "logged", remote=True)
                    for i in range(3):
                        r = host.get("logged", f"/?run={run}&i={i}")
                        self.assertEqual(r.status, 200)
                        ids.append(r.header("X-Request-Id"))
                finally:
                    host.stop()
                # No waiting here: the drain writes what is queued before exit.
                data = read(log)
                for rid in ids:
                    self.assertIn(rid.encode(), data, f"run {run}: {rid} not written by exit")
            self.assertTrue(data.startswith(b"a line from before\n"), data[:200])
            records = self.parse_all(data[len(b"a line from before\n"):])
            self.assertEqual([r["request_id"] for r in records], ids)
            self.assertEqual([r["target"] for r in records],
                             [f"/?run={run}&i={i}" for run in range(2) for i in range(3)])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class CombinedFileTest(HostTestCase):
    """--access-log FILE --access-log-format combined."""

    fmt = "combined"

    def parse(self, data):
        out = []
        for line in lines_of(data):
            m = COMBINED.match(line.decode("ascii"))  # printable ASCII only (access_log.cpp)
            self.assertIsNotNone(m, f"not a combined-format line: {line!r}")
            peer, user, when, request, status, size, referer, ua = m.groups()
            out.append({"peer": peer, "user": user, "when": when, "request": request, "status": int(status),
                        "bytes": size, "referer": referer, "ua": ua})
        return out

    def test_lines_match_combined_format(self):
        marker = uuid.uuid4().hex
        cases = [  # (method, path, site, headers)
            ("GET", f"/?case=ok-{marker}", "logged", {"Referer": f"http://ref.example/{marker}"}),
            ("GET", f"/missing-{marker}.txt", "logged", {}),
            ("GET", f"/data.txt?q={marker}&x=%20y", "logged", {}),
            ("HEAD", f"/data.txt?head={marker}", "logged", {}),
            ("GET", f"/unknown-host-{marker}", "nosuch", {}),
        ]
        sent = []
        for method, path, site, headers in cases:
            r = self.get(path, site=site, method=method, headers={"User-Agent": f"ua-{marker}", **headers})
            sent.append((method, path, r, headers))
        self.assertEqual([s[2].status for s in sent], [200, 404, 200, 200, 404])
        records = self.parse(self.wait_for([p.encode() for _, p, _, _ in sent]))
        for method, path, r, headers in sent:
            with self.subTest(method=method, path=path):
                found = [x for x in records if x["request"] == f"{method} {path} HTTP/1.1"]
                self.assertEqual(len(found), 1, records)
                rec = found[0]
                self.assertEqual(rec["peer"], "127.0.0.1")
                self.assertEqual(rec["user"], "-")
                when = datetime.datetime.strptime(rec["when"], "%d/%b/%Y:%H:%M:%S %z")
                close_to_now(self, when)
                self.assertEqual(rec["status"], r.status)
                self.assertEqual(rec["bytes"], "0" if method == "HEAD" else str(len(r.data)))
                self.assertEqual(rec["referer"], headers.get("Referer", "-"))
                self.assertEqual(rec["ua"], f"ua-{marker}")

    def test_quotes_and_bytes_escaped_on_one_line(self):
        marker = uuid.uuid4().hex
        resp = raw_request(self.host.port, (f"GET /?esc={marker} HTTP/1.1\r\n"
                                            f"Host: logged.localhost:{self.host.port}\r\n"
                                            'User-Agent: say "hi" \\ now\r\n').encode()
                           + b"Referer: caf\xc3\xa9 \xff\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200 "), resp[:200])
        data = self.wait_for([marker.encode()])
        records = [r for r in self.parse(data) if marker in r["request"]]
        self.assertEqual(len(records), 1)
        self.assertEqual(records[0]["ua"], 'say \\"hi\\" \\\\ now')
        self.assertEqual(records[0]["referer"], "caf\\xc3\\xa9 \\xff")


class StdoutTest(HostTestCase, JsonLines):
    """--access-log - writes JSON lines to stdout, after the banners."""

    log_name = "-"

    def content(self):
        return self.host.stdout()

    def json_part(self, data):
        return b"\n".join(l for l in lines_of(data) if l.startswith(b"{"))

    def test_lines_on_stdout(self):
        ids = []
        for path in ("/", "/nope", "/data.txt?x=1"):
            ids.append((path, self.get(path)))
        data = self.wait_for([r.header("X-Request-Id").encode() for _, r in ids])
        # stdout holds the banners and the JSON lines, nothing else.
        for line in lines_of(data):
            self.assertTrue(line.startswith(b"{") or re.match(rb"^(admin token|serving sites|admin API|"
                                                              rb"supervising|published demo site) ", line), line)
        records = self.parse_all(self.json_part(data))
        for path, r in ids:
            rec = self.by_id(records, r.header("X-Request-Id"))
            self.check_common(rec)
            self.assertEqual((rec["target"], rec["status"]), (path, r.status))


class DefaultAndOffTest(unittest.TestCase, JsonLines):
    def run_host(self, log):
        tmp = tempfile.mkdtemp(prefix="atoll-access-log-default-")
        site = write_site(os.path.join(tmp, "site"), {"index.html": INDEX})
        host = LoggingHost(os.path.join(tmp, "data"), log).start()
        try:
            host.publish(site, "logged", remote=True)
            ids = [host.get("logged", "/").header("X-Request-Id") for _ in range(3)]
        finally:
            host.stop()  # the drain writes what is queued before exit
            shutil.rmtree(tmp, ignore_errors=True)
        return host, ids

    def test_default_is_json_on_stdout(self):
        host, ids = self.run_host(None)
        self.assertNotIn("--access-log", host.argv)
        json_lines = b"\n".join(l for l in lines_of(host.stdout()) if l.startswith(b"{"))
        records = self.parse_all(json_lines)
        self.assertEqual([r["request_id"] for r in records], ids)

    def test_off_logs_nothing(self):
        host, ids = self.run_host("off")
        out = host.stdout() + host.stderr()
        for rid in ids:
            self.assertNotIn(rid.encode(), out)
        self.assertFalse([l for l in lines_of(host.stdout()) if l.startswith(b"{")])


if __name__ == "__main__":
    unittest.main()
