"""Prints the test classes of integration test files, one MODULE.CLASS a line.

    python3 list_tests.py test_a.py test_b.py

CMake runs this at configure time to make one CTest entry per class (so the
classes run in parallel). It reads the source with ast and imports nothing:
a class counts if it derives from a name ending in "TestCase" and has at
least one test_ method.
"""

import ast
import os
import sys


def classes(path):
    tree = ast.parse(open(path).read(), path)
    module = os.path.splitext(os.path.basename(path))[0]
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
        tests = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
        if any(b.endswith("TestCase") for b in bases) and tests:
            yield f"{module}.{node.name}"


if __name__ == "__main__":
    for p in sys.argv[1:]:
        for c in classes(p):
            print(c)
