"""Slow suite: the transform fuzzer's corpus against CPython's own compiler.

    python tests/slow/fuzz_compile.py [DIR ...]     # default: fuzz/corpus/transform

The cargo-fuzz target (``fuzz/fuzz_targets/transform.rs``) judges its inputs with ruff's
parser, the one the transform uses. This checks the same inputs with the interpreter itself:
for every file ``compile()`` accepts, the rewritten text must compile too, and its code must
carry the original's line numbers. A refusal of ours (``ParseError``) for a file CPython
accepts is listed as well, as it runs uninstrumented. Exits 1 on any difference.
"""

from __future__ import annotations

import os
import sys
import warnings

from check_stdlib import lines  # this directory: run as a script

from recompyle import _core

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "fuzz", "corpus", "transform")


def check(path: str) -> str | None:
    with open(path, "rb") as f:
        data = f.read()
    try:
        plain = compile(data, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None  # CPython refuses it: the loader compiles the original, same error
    try:
        transformed = _core.transform(data, path, sys.version_info[:2])
    except _core.ParseError as exc:
        return f"refused what CPython compiles: {exc}"
    try:
        code = compile(transformed.source, path, "exec", dont_inherit=True)
    except (RecursionError, MemoryError):
        return None  # deeper once rewritten: the loader warns and runs it as written
    except Exception as exc:  # noqa: BLE001
        return f"rewritten text does not compile: {type(exc).__name__}: {exc}"
    if lines(transformed.remap(code)) != lines(plain):
        return "line numbers differ"
    return None


def main() -> int:
    warnings.simplefilter("ignore")
    dirs = sys.argv[1:] or [DEFAULT]
    failures = 0
    total = 0
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if not os.path.isfile(os.path.join(d, name)):
                continue
            total += 1
            problem = check(os.path.join(d, name))
            if problem:
                failures += 1
                print(f"{os.path.join(d, name)}: {problem}")
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
