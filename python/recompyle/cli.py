"""``python -m recompyle run [options] (script.py | -m module) [args...]``

Runs the target as ``__main__`` the way ``python script.py`` / ``python -m module`` would
(same ``sys.argv``, ``sys.path[0]``, ``__main__`` namespace, exit code and uncaught-exception
traceback, with recompyle's own frames hidden), with the target and every module matching
``--modules`` instrumented and profiled. The flat profile is written at exit: text on
stderr by default, or ``--format json`` / ``-o FILE``.
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import types
from importlib.machinery import SourceFileLoader

USAGE = """\
usage: python -m recompyle run [options] script.py [args...]
       python -m recompyle run [options] -m module [args...]

Run a Python program with its call sites instrumented, and report a flat profile.

options:
  --modules PATTERNS  also instrument these modules: comma-separated globs over dotted
                      names ('pkg.*' is pkg and all its submodules, 'pkg' only pkg, '*'
                      everything); default $RECOMPYLE_MODULES
  --format {text,json}
                      report format (default $RECOMPYLE_FORMAT, else json for
                      an output file named *.json, else text)
  -o, --output FILE   write the report to FILE instead of stderr (default $RECOMPYLE_OUTPUT)
  --track-globals PATTERNS
                      track the globals of these modules (instrumented too; '__main__'
                      is the script); default $RECOMPYLE_TRACK_GLOBALS
  --deps FILE         write the dependency graph of the run to FILE: Graphviz DOT if it
                      ends in .dot, else JSON; tracks the globals of every instrumented
                      module and of the script; no flat profile then unless -o or
                      --format asks for one
  --report-modules PATTERNS
                      show only the call sites in these modules (patterns as --modules)
  --no-report         no flat profile at all
  --per-process       keep the processes of the run apart in the report (one lane or
                      profile each) instead of merging their threads by name
  -h, --help          show this help

Child processes (subprocess, multiprocessing, os.fork) that have recompyle installed are
profiled too, and their profiles merged into the report.
"""

TOP_USAGE = """\
usage: python -m recompyle run [options] (script.py | -m module) [args...]
       python -m recompyle --version

commands:
  run      run a program instrumented and report a flat profile of its calls
  combine  merge profile parts of several processes or runs into one report
"""


class UsageError(Exception):
    pass


def _parse_run(args: list[str]) -> tuple[dict[str, str], str | None, str | None, list[str]]:
    """Split ``args`` into our options, the target and the target's own arguments: the
    first argument that is not one of our options ends them (as with ``python``)."""
    opts: dict[str, str] = {}
    takes_value = {
        "--modules": "modules",
        "--format": "format",
        "-o": "output",
        "--output": "output",
        "--track-globals": "track_globals",
        "--deps": "deps",
        "--report-modules": "report_modules",
    }
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            opts["help"] = "1"
            return opts, None, None, []
        if arg == "--no-report":
            opts["no_report"] = "1"
            i += 1
            continue
        if arg == "--per-process":
            opts["per_process"] = "1"
            i += 1
            continue
        if arg == "-m":
            if i + 1 >= len(args):
                raise UsageError("-m needs a module name")
            return opts, None, args[i + 1], args[i + 2 :]
        if arg == "--":
            if i + 1 >= len(args):
                raise UsageError("a script is needed after --")
            return opts, args[i + 1], None, args[i + 2 :]
        name, eq, value = arg.partition("=")
        if name in takes_value:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"{name} needs a value")
                i += 1
                value = args[i]
            opts[takes_value[name]] = value
            i += 1
            continue
        if arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg}")
        return opts, arg, None, args[i + 1 :]
    raise UsageError("nothing to run: give a script or -m module")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(TOP_USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        from recompyle import __version__

        print(f"recompyle {__version__}")
        return 0
    if argv[0] == "combine":
        from recompyle.combine import main as combine_main

        return combine_main(argv[1:])
    if argv[0] != "run":
        sys.stderr.write(f"recompyle: unknown command {argv[0]!r}\n{TOP_USAGE}")
        return 2
    try:
        opts, script, module, args = _parse_run(argv[1:])
    except UsageError as exc:
        sys.stderr.write(f"{USAGE}recompyle run: error: {exc}\n")
        return 2
    if "help" in opts:
        sys.stdout.write(USAGE)
        return 0
    return run(script, module, args, opts)


def run(script: str | None, module: str | None, args: list[str], opts: dict[str, str]) -> int:
    from recompyle.finder import install
    from recompyle.report import FORMATS, default_format, report_at_exit

    output = opts.get("output") or os.environ.get("RECOMPYLE_OUTPUT") or None
    asked_format = opts.get("format") or os.environ.get("RECOMPYLE_FORMAT")
    fmt = asked_format or default_format(output)
    if fmt not in FORMATS:
        sys.stderr.write(f"recompyle run: error: --format must be one of {', '.join(FORMATS)}\n")
        return 2
    from recompyle.loader import strict_setting_error

    strict_error = strict_setting_error()
    if strict_error:
        sys.stderr.write(f"recompyle run: error: {strict_error}\n")
        return 2
    patterns = opts.get("modules") or os.environ.get("RECOMPYLE_MODULES") or ""
    # What -m adds is not the user's typing: not named at exit if it matched nothing.
    extra = "" if module is None else f"{module},{module}.__main__"
    tracked = opts.get("track_globals") or os.environ.get("RECOMPYLE_TRACK_GLOBALS") or ""
    deps = opts.get("deps")
    if deps:
        # A dependency graph needs the global reads of everything instrumented.
        tracked = ",".join(p for p in (tracked, patterns, extra) if p)
    from recompyle._core import ModuleMatcher

    report_modules = opts.get("report_modules")
    for option, value in (
        ("--modules", patterns),
        ("--track-globals", tracked),
        ("--report-modules", report_modules or ""),
    ):
        try:
            ModuleMatcher(value)
        except ValueError as exc:
            sys.stderr.write(f"recompyle run: error: {option}: {exc}\n")
            return 2
    # The target runs in a `__main__` made here (the pattern names it), never imported.
    main_name = "__main__" if module is None else module
    track_main = bool(deps) or ModuleMatcher(tracked).matches(main_name)
    tracked = _without_main(tracked)
    patterns = _without_main(patterns)
    if patterns or tracked:
        install(patterns, track_globals=tracked)
    if extra:
        install(extra, report_unmatched=False)
    for flag, target in (("-o", output), ("--deps", deps)):
        if target:
            parent = os.path.dirname(os.path.abspath(target))
            if not os.path.isdir(parent):
                sys.stderr.write(
                    f"recompyle run: error: no directory {parent!r} for {flag} {target}\n"
                )
                return 2
    # With --deps the graph is what was asked for: a profile only if asked too.
    if "no_report" not in opts and (not deps or output or asked_format):
        report_at_exit(fmt, output, report_modules)
        from recompyle import processes

        processes.start_top(
            output,
            ",".join(p for p in (patterns, extra) if p),
            tracked,
            main=script or "",
            per_process=bool(opts.get("per_process")),
        )
    main_module = _fresh_main(track_main)
    if deps:
        from recompyle.deps import write_at_exit

        write_at_exit(deps)
    try:
        if script is not None:
            return _run_script(script, args, main_module, track_main)
        return _run_module(module or "", args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: B036 -- the target's uncaught exception
        return _uncaught(exc)


def _without_main(patterns: str) -> str:
    """``patterns`` without ``__main__``: the target always is instrumented here, and it is
    not an import the finder would see."""
    return ",".join(p for p in patterns.split(",") if p.strip() != "__main__")


def _fresh_main(tracked: bool = False) -> types.ModuleType:
    """A ``__main__`` like the one CPython creates at start-up, not recompyle's own (with a
    tracked namespace when its globals are tracked)."""
    main = types.ModuleType("__main__")
    if tracked:
        from recompyle._core import track_module

        track_module(main)
    if sys.version_info < (3, 14):
        # Up to 3.13 the interpreter's __main__ starts with an empty dict; from 3.14 (PEP 649)
        # it has none, and one set here would hide what the module's __annotate__ computes.
        main.__dict__["__annotations__"] = {}
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    return main


def _run_script(path: str, args: list[str], main: types.ModuleType, tracked: bool = False) -> int:
    from recompyle.loader import instrument_source

    abspath = os.path.abspath(path)
    try:
        with open(abspath, "rb") as f:
            data = f.read()
    except OSError as exc:
        sys.stderr.write(
            f"{sys.executable}: can't open file {abspath!r}: [Errno {exc.errno}] {exc.strerror}\n"
        )
        return 2
    sys.argv[:] = [path, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(abspath))
    main.__loader__ = SourceFileLoader("__main__", abspath)
    main.__dict__["__file__"] = abspath
    if sys.version_info < (3, 15):
        # 3.15 no longer sets __cached__ on a script's __main__.
        main.__dict__["__cached__"] = None
    # SyntaxError: reported by run()
    code = instrument_source(data, abspath, "__main__", track_globals=tracked)
    exec(code, main.__dict__)
    return 0


def _run_module(name: str, args: list[str]) -> int:
    import runpy

    sys.argv[:] = ["-m", *args]
    sys.path[0] = os.getcwd()
    # What `python -m` itself calls: sets argv[0] to the module's file, runs in __main__.
    runpy._run_module_as_main(name, alter_argv=True)  # type: ignore[attr-defined]
    return 0


def _uncaught(exc: BaseException) -> int:
    """Report an uncaught exception as the interpreter's ``PyErr_Print`` does, without
    recompyle's own frames: ``sys.last_*`` set, then ``sys.excepthook``."""
    here = os.path.dirname(os.path.abspath(__file__))
    tb = exc.__traceback__
    while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == here:
        tb = tb.tb_next
    exc.__traceback__ = tb
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc
    sys.excepthook(type(exc), exc, tb)
    if isinstance(exc, KeyboardInterrupt):
        # CPython finishes the interpreter (threads, atexit: the report among them), then
        # exits through SIGINT's default action so the parent sees the signal.
        import atexit

        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return 1
