"""Slow check: over every ``.py`` file of this interpreter's standard library, our call
sites are exactly CPython's ``ast`` ``Call`` nodes (positions and callee text), as
``tests/test_site_positions.py`` checks on a sample.

    python tests/slow/check_positions.py [ROOT]

Exits 1 listing each file that differs.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from test_site_positions import STDLIB, compare, stdlib_files  # noqa: E402


def main() -> int:
    warnings.simplefilter("ignore")  # the files' own SyntaxWarnings
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else STDLIB
    start = time.perf_counter()
    files = stdlib_files(root)
    failures = 0
    for path in files:
        problem = compare(path)
        if problem:
            failures += 1
            print(f"FAIL {path}: {problem}")
    secs = time.perf_counter() - start
    print(f"{sys.version.split()[0]}: {len(files)} files, {failures} differ, {secs:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
