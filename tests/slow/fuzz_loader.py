"""Slow suite: fuzz the loader (atheris) over random bytes as module source.

    python tests/slow/fuzz_loader.py [libFuzzer options] [CORPUS_DIR]   # pip install atheris

For any bytes, ``recompyle.instrument_source`` must behave as ``compile()`` of the same bytes:
where ``compile`` succeeds it returns code (instrumented, or as written with a
``RecompyleWarning``), never raising; where ``compile`` raises, it raises the same exception
type with the same message (CPython's own error, not ours). Both run in this process; a
difference is a finding (atheris stops and saves the input). Run by ``scripts/fuzz.sh``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

import atheris

with atheris.instrument_imports():
    import recompyle
    import recompyle.cache
    import recompyle.loader
    from recompyle.loader import RecompyleWarning

PATH = os.path.join(tempfile.mkdtemp(prefix="recompyle-fuzz-"), "fuzzed.py")


def _outcome(fn) -> tuple[str, str]:
    try:
        fn()
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # The compiler's own errors; SyntaxError's text names the file and line.
        return type(exc).__name__, str(exc)
    return "ok", ""


def test_one_input(data: bytes) -> None:
    plain = _outcome(lambda: compile(data, PATH, "exec", dont_inherit=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecompyleWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        ours = _outcome(lambda: recompyle.instrument_source(data, PATH, "fuzzed"))
    if plain != ours:
        raise AssertionError(f"compile: {plain!r}\nrecompyle: {ours!r}\nsource: {data!r}")


def main() -> None:
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
