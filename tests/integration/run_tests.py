"""Runs one integration test class (or module) and records each test's outcome.

    python3 run_tests.py test_http1_limits.LimitsTest

CTest runs one of these per test class. unittest alone would exit 0 when it
ran nothing, and CTest would count a class of thirty tests as one; this runner
fails when no test passed, and writes what each test did to
$ATOLL_TEST_RESULTS/NAME.json, from which scripts/test counts tests passed,
failed and skipped (a skip is never a pass).
"""

import json
import os
import sys
import time
import unittest


class RecordingResult(unittest.TextTestResult):
    """A verbose result that also keeps each test's outcome by name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}
        self.seconds = {}
        self._started = {}

    def startTest(self, test):
        self._started[test.id()] = time.monotonic()
        super().startTest(test)

    def _record(self, test, outcome):
        # A class-level error (setUpClass) arrives as a _ErrorHolder "test".
        name = test.id() if hasattr(test, "id") else str(test)
        # A failure after success (tearDown) overrides it; a pass never
        # overrides a failure already recorded (from a subTest).
        if self.outcomes.get(name) == "failed" and outcome == "passed":
            return
        seconds = time.monotonic() - self._started.get(name, time.monotonic())
        self.outcomes[name] = outcome
        self.seconds[name] = round(seconds, 3)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(test, "failed")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    name = argv[1]
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=RecordingResult, stream=sys.stderr)
    result = runner.run(suite)
    counts = {k: sum(1 for v in result.outcomes.values() if v == k) for k in ("passed", "failed", "skipped")}
    out_dir = os.environ.get("ATOLL_TEST_RESULTS")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump({"name": name, **counts, "tests": result.outcomes,
                       "seconds": result.seconds}, f, indent=1, sort_keys=True)
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped",
          file=sys.stderr)
    if counts["passed"] == 0 and counts["failed"] == 0:
        print(f"{name}: no test ran: a test class must run at least one test", file=sys.stderr)
        return 1
    return 0 if counts["failed"] == 0 and result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
