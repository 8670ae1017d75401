"""Run one Python process under valgrind's callgrind and return the instructions it executed.

Instruction counts do not depend on what else the machine is doing, so the benches that
must be judged on a shared VM (``callgrind_calls.py``, ``bench_warm_import.py``,
``bench_cold_import.py``) count instructions through this one runner. Each bench imports it
as ``callgrind_run`` (a script's own directory is first on ``sys.path``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(args: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> int:
    """Instructions of ``python ARGS`` under callgrind (this interpreter); exits naming
    ``what`` with the end of its stderr if the run fails or callgrind printed no total."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         *args],
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    found = _COLLECTED.findall(proc.stderr)
    if proc.returncode != 0 or not found:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"callgrind run {what} failed: {tail}")
    return int(found[-1])
