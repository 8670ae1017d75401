"""Slow check: every ``.py`` file of this interpreter's standard library is rewritten,
compiles, and its code reports the same line numbers as the plain compile.

    python tests/slow/check_stdlib.py [--verbose] [ROOT]

Compares, per file, the set of (code object qualname, line) pairs from ``co_lines()``
(3.10+) or ``co_lnotab`` lines (3.9) of the plain and the instrumented code, recursively.
Exits 1 listing each file that fails to transform, fails to compile, or reports other lines.
"""

from __future__ import annotations

import argparse
import dis
import os
import sys
import sysconfig
import time
import types

from recompyle import _core


def lines(code: types.CodeType, prefix: str = "") -> set[tuple[str, int]]:
    name = f"{prefix}/{getattr(code, 'co_qualname', code.co_name)}"
    found = {(name, line) for _, line in dis.findlinestarts(code) if line is not None}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= lines(const, name)
    return found


def check(path: str) -> str | None:
    with open(path, "rb") as f:
        data = f.read()
    try:
        plain = compile(data, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None  # not valid for this interpreter (test data, other versions' files)
    try:
        out = _core.transform(data, path, sys.version_info[:2])
    except _core.ParseError as exc:
        return f"parse refused what CPython compiles: {exc}"
    except _core.InternalTransformError as exc:
        return f"internal transform error: {exc}"
    try:
        inst = out.remap(compile(out.source, path, "exec", dont_inherit=True))
    except SyntaxError as exc:
        return f"rewritten source does not compile: {exc}"
    a, b = lines(plain), lines(inst)
    if a != b:
        missing = sorted(a - b)[:5]
        extra = sorted(b - a)[:5]
        return f"lines differ: missing {missing} extra {extra}"
    return None


def main() -> int:
    import warnings

    warnings.simplefilter("ignore")  # the files' own SyntaxWarnings
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    files = failures = 0
    total_bytes = 0
    for dirpath, dirnames, filenames in os.walk(args.root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            files += 1
            total_bytes += os.path.getsize(path)
            problem = check(path)
            if problem:
                failures += 1
                print(f"FAIL {path}: {problem}")
            elif args.verbose:
                print(f"ok   {path}")
    secs = time.perf_counter() - start
    print(
        f"{sys.version.split()[0]}: {files} files, {total_bytes / 1e6:.1f} MB, "
        f"{failures} failed, {secs:.1f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
