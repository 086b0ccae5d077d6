#!/usr/bin/env python3
"""Counts one CTest run's tests: passed, failed and skipped, each test once.

    scripts/count_tests.py JUNIT_XML RESULTS_DIR

JUNIT_XML is CTest's --output-junit file. A unit test (GoogleTest) is one
CTest entry each; an integration entry is a Python test class, whose tests
tests/integration/run_tests.py recorded in RESULTS_DIR/CLASS.json: those are
counted one by one. An entry that failed without recording its tests (a
crash, a timeout) counts as one failure. A skip is never a pass.
Prints "passed failed skipped" on stdout, and the failed and skipped names
on stderr.
"""

import json
import os
import sys
import xml.etree.ElementTree as ET


def main(junit, results):
    passed = failed = skipped = 0
    failed_names, skipped_names = [], []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name")
        status = case.get("status")
        ctest_failed = status == "fail" or case.find("failure") is not None
        ctest_skipped = status in ("notrun", "disabled") or case.find("skipped") is not None
        record = None
        if name.startswith("integration."):
            path = os.path.join(results, name[len("integration."):] + ".json")
            if os.path.exists(path):
                with open(path) as f:
                    record = json.load(f)
        if record is not None:
            for test, outcome in sorted(record["tests"].items()):
                if outcome == "passed":
                    passed += 1
                elif outcome == "skipped":
                    skipped += 1
                    skipped_names.append(test)
                else:
                    failed += 1
                    failed_names.append(test)
            # The class failed in CTest (no test ran, a timeout, a crash after
            # the record) although no test in it did: still a failure.
            if ctest_failed and record["failed"] == 0:
                failed += 1
                failed_names.append(name)
        elif ctest_failed:
            failed += 1
            failed_names.append(name)
        elif ctest_skipped:
            skipped += 1
            skipped_names.append(name)
        else:
            passed += 1
    for n in failed_names:
        print(f"failed: {n}", file=sys.stderr)
    for n in skipped_names:
        print(f"skipped: {n}", file=sys.stderr)
    print(passed, failed, skipped)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
