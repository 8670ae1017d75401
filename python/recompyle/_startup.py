"""Start-up for the environment-variable route, run from ``recompyle_startup.pth`` at interpreter
start when ``RECOMPYLE_MODULES``, ``RECOMPYLE_TRACK_GLOBALS``, ``RECOMPYLE_OUTPUT``,
``RECOMPYLE_FORMAT`` or ``RECOMPYLE_PARTS`` is set (the ``.pth`` line checks the variables
first, so unset ones cost five dictionary lookups), and by
``import recompyle.autoinstrument``.

``RECOMPYLE_MODULES``  patterns of modules to instrument (see ``recompyle.finder``).
``RECOMPYLE_TRACK_GLOBALS``  patterns of modules whose globals are tracked (and which are
                       instrumented too; see ``recompyle.tracked_globals``); ``__main__`` is the
                       namespace the program runs in.
``RECOMPYLE_FORMAT``   a report format (``text``, ``json``, ``tree``, ``speedscope``,
                       ``chrome``, ``pstats``, ``callgrind``, ``collapsed``, ``html``; see
                       ``recompyle.export``): profile every instrumented call and write the
                       report at interpreter exit.
``RECOMPYLE_OUTPUT``   file for that report (default: stderr); implies profiling.
``RECOMPYLE_PARTS``    set by a profiled run for its children (``recompyle.processes``):
                       they profile and leave their part there.
``RECOMPYLE_OTEL``     ``1``: every instrumented call lasting at least
                       ``RECOMPYLE_OTEL_MIN_DURATION`` (default ``1ms``) becomes an
                       OpenTelemetry span (``recompyle.otel``); ``0`` or unset: none.
``RECOMPYLE_STRICT``   ``1``: a module that cannot be instrumented raises ``RuntimeError``
                       instead of running uninstrumented with a warning; ``0`` or unset:
                       the warning. Anything else is refused with a one-line message.
The variables are read by ``recompyle.config``, which the CLI shares.

Everything here is idempotent: site may process the ``.pth`` file twice in a venv.
"""

import os
import sys

from recompyle import config
from recompyle.finder import install


def _complain(message: str) -> None:
    sys.stderr.write(f"recompyle: {message}\n")


def install_from_env() -> bool:
    """Install what the environment asks for; False (with a message) if it asks wrongly."""
    env = config.from_env()
    patterns, tracked, fmt, output = env.modules, env.track_globals, env.format, env.output
    from recompyle.loader import strict_setting_error

    strict_error = strict_setting_error()
    if strict_error:
        _complain(f"{strict_error}; modules that cannot be instrumented only warn")
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
    from recompyle import processes

    if patterns or tracked:
        from recompyle._core import ModuleMatcher

        for variable, value in (
            (config.ENV_MODULES, patterns),
            (config.ENV_TRACK_GLOBALS, tracked),
        ):
            try:
                ModuleMatcher(value)
            except ValueError as exc:
                _complain(f"{variable}: {exc}; nothing is instrumented")
                return False
    otel = env.otel
    if otel not in ("", "0"):
        if otel != "1":
            _complain(f"{config.ENV_OTEL}={otel!r} is not 1 or 0; no spans")
        else:
            from recompyle.otel import start as start_otel

            problem = start_otel(env.otel_min_duration, config.ENV_OTEL_MIN_DURATION)
            if problem:
                _complain(f"{config.ENV_OTEL}: {problem}; no spans")
    # A child of a profiled run (set up here, once) leaves its part to the top process.
    is_child = processes.child_mode()
    if patterns or tracked:
        # A pattern that matched nothing is named at exit only beside a report: a variable
        # set for a whole test suite reaches subprocesses whose stderr is compared.
        # (A child of a profiled run leaves that to the top process.)
        asks_report = (fmt is not None or output is not None) and not is_child
        # `__main__` is tracked here (it exists already: no loader of ours makes it), not
        # named to the finder, which would warn that it is running.
        named = ",".join(p for p in tracked.split(",") if p.strip() != "__main__")
        install(patterns, track_globals=named, report_unmatched=asks_report)
        if tracked and ModuleMatcher(tracked).matches("__main__"):
            _track_main()
    if is_child:
        # A child of a profiled run: it profiles and leaves its part to the top process,
        # whatever RECOMPYLE_OUTPUT it inherited.
        from recompyle.report import profile_as_child

        profile_as_child()
        return True
    if fmt is not None or output is not None:
        if not (patterns or tracked):
            # A report of nothing. `python -m recompyle run` reads these variables itself
            # (and sets up the report), so the complaint waits for the exit.
            import atexit

            atexit.register(_report_of_nothing, os.getpid(), output or fmt or "")
            return True
        from recompyle.report import report_at_exit

        report_at_exit(fmt, output)
        processes.start_top(output, patterns, tracked)
    return True


def _track_main() -> None:
    """Track the interpreter's own ``__main__``, where ``python script.py`` and ``python -m
    module`` run the program: its namespace exists before the program starts, so it is
    swapped now (no loader of ours creates it)."""
    from types import ModuleType

    from recompyle._core import track_module

    main = sys.modules.get("__main__")
    if type(main) is ModuleType:
        track_module(main)


def _report_of_nothing(pid: int, asked: str) -> None:
    from recompyle.report import report_pending

    if os.getpid() == pid and not report_pending():
        variable = config.from_env().report_variable
        _complain(
            f"{variable}={asked!r} asks for a report, but RECOMPYLE_MODULES is empty: "
            "nothing was instrumented, no report written"
        )


install_from_env()
