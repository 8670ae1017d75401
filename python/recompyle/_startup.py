"""Start-up for the environment-variable route, run from ``recompyle_startup.pth`` at interpreter
start when ``RECOMPYLE_MODULES`` or ``RECOMPYLE_TRACK_GLOBALS`` is set (the ``.pth`` line
checks the variables first, so unset ones cost two dictionary lookups), and by
``import recompyle.autoinstrument``.

``RECOMPYLE_MODULES``  patterns of modules to instrument (see ``recompyle.finder``).
``RECOMPYLE_TRACK_GLOBALS``  patterns of modules whose globals are tracked (and which are
                       instrumented too; see ``recompyle.tracking``).
``RECOMPYLE_FORMAT``   ``text`` or ``json``: profile every instrumented call and write the
                       report at interpreter exit.
``RECOMPYLE_OUTPUT``   file for that report (default: stderr); implies profiling.
``RECOMPYLE_PARTS``    set by a profiled run for its children (``recompyle.processes``):
                       they profile and leave their part there.
``RECOMPYLE_STRICT``   ``1``: a module that cannot be instrumented raises ``RuntimeError``
                       instead of running uninstrumented with a warning; ``0`` or unset:
                       the warning. Anything else is refused with a one-line message.

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
    from recompyle.loader import strict_setting_error

    strict_error = strict_setting_error()
    if strict_error:
        _complain(f"{strict_error}; modules that cannot be instrumented only warn")
    if fmt is not None and fmt not in ("text", "json"):
        _complain(f"RECOMPYLE_FORMAT={fmt!r} is not one of text, json; no report")
        fmt = output = None
    from recompyle import processes

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
        # A pattern that matched nothing is named at exit only beside a report: a variable
        # set for a whole test suite reaches subprocesses whose stderr is compared.
        # (A child of a profiled run leaves that to the top process.)
        asks_report = (fmt is not None or output is not None) and not processes.child_mode()
        install(patterns, track_globals=tracked, report_unmatched=asks_report)
    if processes.child_mode():
        # A child of a profiled run: it profiles and leaves its part to the top process,
        # whatever RECOMPYLE_OUTPUT it inherited.
        from recompyle import _core

        _core.profiler_start()
        return True
    if fmt is not None or output is not None:
        from recompyle.report import report_at_exit

        report_at_exit(fmt, output)
        processes.start_top(output, patterns, tracked)
    return True


install_from_env()
