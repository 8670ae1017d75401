"""Start-up for the environment-variable route, run from ``recompyle_startup.pth`` at interpreter
start when ``RECOMPYLE_MODULES`` or ``RECOMPYLE_TRACK_GLOBALS`` is set (the ``.pth`` line
checks the variables first, so unset ones cost two dictionary lookups), and by
``import recompyle.autoinstrument``.

``RECOMPYLE_MODULES``  patterns of modules to instrument (see ``recompyle.finder``).
``RECOMPYLE_TRACK_GLOBALS``  patterns of modules whose globals are tracked (and which are
                       instrumented too; see ``recompyle.tracking``).
``RECOMPYLE_FORMAT``   a report format (``text``, ``json``, ``tree``, ``speedscope``,
                       ``chrome``, ``pstats``, ``callgrind``, ``collapsed``, ``html``; see
                       ``recompyle.export``): profile every instrumented call and write the
                       report at interpreter exit.
``RECOMPYLE_OUTPUT``   file for that report (default: stderr); implies profiling.
``RECOMPYLE_STRICT``   ``1``: a module that cannot be instrumented raises instead of running
                       uninstrumented with a warning.

Everything here is idempotent: site may process the ``.pth`` file twice in a venv.
"""

import os
import sys

from recompyle.finder import install


def _complain(message: str) -> None:
    sys.stderr.write(f"recompyle: {message}\n")


def install_from_env() -> bool:
    """Install what the environment asks for; False (with a message) if it asks wrongly."""
    patterns = os.environ.get("RECOMPYLE_MODULES", "").strip()
    tracked = os.environ.get("RECOMPYLE_TRACK_GLOBALS", "").strip()
    fmt = os.environ.get("RECOMPYLE_FORMAT", "").strip() or None
    output = os.environ.get("RECOMPYLE_OUTPUT", "").strip() or None
    if fmt is not None and fmt not in ("text", "json"):
        from recompyle.export import get_format, names

        try:
            binary = get_format(fmt).binary
        except ValueError:
            _complain(f"RECOMPYLE_FORMAT={fmt!r} is not one of {', '.join(names())}; no report")
            fmt = output = None
        else:
            if binary and output is None:
                _complain(f"RECOMPYLE_FORMAT={fmt!r} is binary: set RECOMPYLE_OUTPUT; no report")
                fmt = None
    if patterns or tracked:
        from recompyle._core import ModuleMatcher

        for variable, value in (
            ("RECOMPYLE_MODULES", patterns),
            ("RECOMPYLE_TRACK_GLOBALS", tracked),
        ):
            try:
                ModuleMatcher(value)
            except ValueError as exc:
                _complain(f"{variable}: {exc}; nothing is instrumented")
                return False
        install(patterns, track_globals=tracked)
    if fmt is not None or output is not None:
        from recompyle.report import report_at_exit

        report_at_exit(fmt, output)
    return True


install_from_env()
