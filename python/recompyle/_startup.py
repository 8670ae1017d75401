"""Start-up for the environment-variable route, run from ``recompyle_startup.pth`` at interpreter
start when ``RECOMPYLE_MODULES`` is set (the ``.pth`` line checks the variable first, so an
unset variable costs one dictionary lookup), and by ``import recompyle.autoinstrument``.

``RECOMPYLE_MODULES``  patterns of modules to instrument (see ``recompyle.finder``).
``RECOMPYLE_FORMAT``   ``text`` or ``json``: profile every instrumented call and write the
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
    fmt = os.environ.get("RECOMPYLE_FORMAT", "").strip() or None
    output = os.environ.get("RECOMPYLE_OUTPUT", "").strip() or None
    if fmt is not None and fmt not in ("text", "json"):
        _complain(f"RECOMPYLE_FORMAT={fmt!r} is not one of text, json; no report")
        fmt = output = None
    if patterns:
        try:
            install(patterns)
        except ValueError as exc:
            _complain(f"RECOMPYLE_MODULES: {exc}; nothing is instrumented")
            return False
    if fmt is not None or output is not None:
        from recompyle.report import report_at_exit

        report_at_exit(fmt, output)
    return True


install_from_env()
