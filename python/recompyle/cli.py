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

from recompyle import config
from recompyle.config import Config, parse_duration

USAGE = """\
usage: python -m recompyle run [options] script.py [args...]
       python -m recompyle run [options] (directory | app.zip) [args...]
       python -m recompyle run [options] -m module [args...]

Run a Python program with its call sites instrumented, and report a flat profile.

options:
  --modules PATTERNS  also instrument these modules: comma-separated globs over dotted
                      names ('pkg.*' is pkg and all its submodules, 'pkg' only pkg, '*'
                      everything); default $RECOMPYLE_MODULES
  --format FORMAT     report format (default $RECOMPYLE_FORMAT, else the one the -o file
                      name implies, else text):
                        text        flat table of call sites
                        json        the profile document       (*.json)
                        tree        call tree for the terminal
                        speedscope  speedscope                 (*.speedscope.json)
                        chrome      Perfetto, chrome://tracing (*.trace.json)
                        pstats      pstats, snakeviz, gprof2dot (*.prof, *.pstats)
                        callgrind   KCachegrind, gprof2dot     (callgrind.out.*)
                        collapsed   flamegraph.pl, inferno     (*.collapsed, *.folded)
                        html        one page for a browser     (*.html)
  -o, --output FILE   write the report to FILE instead of stderr (default $RECOMPYLE_OUTPUT)
  --timeline          also record when each call began and ended (implied by chrome;
                      makes speedscope's profile evented)
  --timeline-cap N    keep at most N timeline events (default 2000000; implies
                      --timeline); later ones are dropped and counted, the tree stays exact
  --min-duration DUR  leave calls shorter than DUR (e.g. 50us, 1ms) out of the timeline
                      (implies --timeline)
  --min-percent P     tree format: hide calls under P% of their thread's time (default 1)
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
  --otel              send every instrumented call lasting at least 1 ms to OpenTelemetry
                      as a span (needs pip install 'recompyle[otel]'); the SDK is set up
                      from the OTEL_* variables unless the program (or
                      opentelemetry-instrument) set a tracer provider; no flat profile
                      then unless -o or --format asks for one
  --otel-min-duration DUR
                      the minimum for --otel (e.g. 250us, 5ms; implies --otel)
  --per-process       keep the processes of the run apart in the report (one lane or
                      profile each) instead of merging their threads by name
  -h, --help          show this help

Child processes (subprocess, multiprocessing, os.fork) that have recompyle installed are
profiled too, and their profiles merged into the report.
"""

TOP_USAGE = """\
usage: python -m recompyle run [options] (script.py | -m module) [args...]
       python -m recompyle combine PART... -o FILE [--format FORMAT]
       python -m recompyle view REPORT.json [-o PAGE.html]
       python -m recompyle --version

commands:
  run      run a program instrumented and report a flat profile of its calls
  combine  merge profile parts of several processes or runs into one report
  view     render a saved JSON report as one self-contained HTML page
"""

VIEW_USAGE = """\
usage: python -m recompyle view REPORT.json [-o PAGE.html]

Render a JSON report (run --format json) as one self-contained HTML page: flame graph,
call-site table and annotated source. Files that changed or went missing since the report
was written are named on stderr and in the page.

options:
  -o, --output FILE   the page to write (default: REPORT with .html for .json)
  -h, --help          show this help
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
        "--timeline-cap": "timeline_cap",
        "--min-duration": "min_duration",
        "--min-percent": "min_percent",
        "--otel-min-duration": "otel_min_duration",
    }
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            opts["help"] = "1"
            return opts, None, None, []
        if arg in ("--no-report", "--timeline", "--otel"):
            opts[arg[2:].replace("-", "_")] = "1"
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
        return combine_command(argv[1:])
    if argv[0] == "view":
        return view(argv[1:])
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
    from recompyle.report import cancel_report_at_exit, report_at_exit

    # Options given here win over the environment (which the start-up hook reads too).
    env = config.from_env()
    output = opts.get("output") or env.output
    asked_format = opts.get("format") or env.format
    try:
        report = _report_options(opts, output, env)
    except UsageError as exc:
        sys.stderr.write(f"recompyle run: error: {exc}\n")
        return 2
    from recompyle.loader import strict_setting_error

    strict_error = strict_setting_error()
    if strict_error:
        sys.stderr.write(f"recompyle run: error: {strict_error}\n")
        return 2
    patterns = opts.get("modules") or env.modules
    # What -m adds is not the user's typing: not named at exit if it matched nothing.
    extra = "" if module is None else f"{module},{module}.__main__"
    tracked = opts.get("track_globals") or env.track_globals
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
    # A directory or zip archive runs its `__main__` module, as `python DIR` does; a file
    # runs in a `__main__` made here (the pattern names it), never imported.
    importer = _main_importer(script) if script is not None else None
    main_name = "__main__" if module is None else module
    track_main = bool(deps) or ModuleMatcher(tracked).matches(main_name)
    if importer is not None:
        if type(importer).__name__ != "FileFinder":
            sys.stderr.write(
                f"recompyle: {script} is run by {type(importer).__name__}, whose modules are "
                "not instrumented (only .py files in directories are)\n"
            )
    tracked = _without_main(tracked)
    patterns = _without_main(patterns)
    main_module = _fresh_main(track_main)
    if patterns or tracked:
        install(patterns, track_globals=tracked)
    if extra:
        install(extra, report_unmatched=False)
    if importer is not None:
        # The directory's (or archive's) __main__.py is imported as __main__.
        install("__main__", warn_imported=False, report_unmatched=False)
    code = None
    if script is not None and importer is None:
        # Read and compile before the profile starts: a run that never started (no such
        # file, a syntax error) reports its error as `python` does, and no profile.
        try:
            code = _load_script(script, args, main_module, track_main)
        except OSError as exc:
            sys.stderr.write(
                f"{sys.executable}: can't open file {os.path.abspath(script)!r}: "
                f"[Errno {exc.errno}] {exc.strerror}\n"
            )
            return 2
        except BaseException as exc:  # noqa: B036 -- SyntaxError and the like, as python
            return _uncaught(exc)
    otel = "otel" in opts or "otel_min_duration" in opts
    if otel:
        from recompyle.otel import start

        problem = start(opts.get("otel_min_duration"), "--otel-min-duration")
        if problem:
            sys.stderr.write(f"recompyle run: error: {problem}\n")
            return 2
    # With --deps (or --otel) the graph (or the spans) is what was asked for: a profile only
    # if asked too.
    if "no_report" not in opts and (not (deps or otel) or output or asked_format):
        report_at_exit(modules=report_modules, **report)  # type: ignore[arg-type]
        from recompyle import processes

        processes.start_top(
            output,
            ",".join(p for p in (patterns, extra) if p),
            tracked,
            main=script or "",
            per_process=bool(opts.get("per_process")),
        )
    if deps:
        from recompyle.deps import write_at_exit

        write_at_exit(deps)
    try:
        if code is not None:
            return _run_script(code, main_module)
        if script is not None:
            return _run_main_importer(script, args)
        return _run_module(module or "", args)
    except SystemExit:
        if code is None and main_module.__dict__.get("__spec__") is None:
            # runpy sets __spec__ just before running the target: it found nothing to run
            # (no such module, no __main__.py) and exits with python's message.
            cancel_report_at_exit()
        raise
    except BaseException as exc:  # noqa: B036 -- the target's uncaught exception
        return _uncaught(exc)


def _without_main(patterns: str) -> str:
    """``patterns`` without ``__main__``: the target always is instrumented here, and it is
    not an import the finder would see."""
    return ",".join(p for p in patterns.split(",") if p.strip() != "__main__")


def _report_options(opts: dict[str, str], output: str | None, env: Config) -> dict[str, object]:
    """``report_at_exit``'s arguments from the options and the environment, checked before
    anything runs: an unknown format, a binary format for a terminal, a bad number or an
    output file in a missing directory is a ``UsageError`` naming the option."""
    from recompyle.export import format_for_output, get_format

    name = opts.get("format")
    option = "--format"
    if not name and env.format:
        name, option = env.format, config.ENV_FORMAT
    try:
        fmt = get_format(name) if name else format_for_output(output)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if fmt.binary and (output is None or _is_terminal(output)):
        where = "stderr" if output is None else output
        raise UsageError(
            f"{option} {fmt.name} writes binary data, not for a terminal ({where}): give -o FILE"
        )
    cap = opts.get("timeline_cap")
    try:
        timeline_cap = None if cap is None else int(cap)
    except ValueError:
        timeline_cap = 0
    if timeline_cap is not None and timeline_cap <= 0:
        raise UsageError(f"--timeline-cap: {cap!r} is not a positive whole number of events")
    min_duration = opts.get("min_duration")
    try:
        min_duration_ns = None if min_duration is None else parse_duration(min_duration)
    except ValueError as exc:
        raise UsageError(f"--min-duration: {exc}") from None
    percent = opts.get("min_percent")
    try:
        min_percent = None if percent is None else float(percent)
    except ValueError:
        min_percent = -1.0
    if min_percent is not None and not 0 <= min_percent <= 100:
        raise UsageError(f"--min-percent: {percent!r} is not a percentage from 0 to 100")
    for flag, target in (("-o", output), ("--deps", opts.get("deps"))):
        if target:
            parent = os.path.dirname(os.path.abspath(target))
            if not os.path.isdir(parent):
                raise UsageError(f"no directory {parent!r} for {flag} {target}")
    return {
        "fmt": fmt.name,
        "output": output,
        # a cap or a minimum duration only means something for a timeline: they ask for one
        "timeline": bool({"timeline", "timeline_cap", "min_duration"} & set(opts)),
        "timeline_cap": timeline_cap,
        "min_duration_ns": min_duration_ns,
        "min_percent": min_percent,
    }


def _is_terminal(path: str) -> bool:
    """Whether ``path`` is a terminal device (``/dev/tty``, ``/dev/pts/3``). Only a
    character device is opened to ask (without becoming the controlling terminal): opening
    a FIFO would hand its reader an early end of file."""
    import stat

    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def view(args: list[str]) -> int:
    """``recompyle view REPORT.json [-o PAGE.html]``: the saved report as an HTML page, its
    files checked against their recorded hashes (a changed file's spans would point at the
    wrong text, so the page shows the recorded copy and says so)."""
    report = output = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            sys.stdout.write(VIEW_USAGE)
            return 0
        name, eq, value = arg.partition("=")
        if name in ("-o", "--output"):
            if not eq:
                if i + 1 >= len(args):
                    sys.stderr.write(f"{VIEW_USAGE}recompyle view: error: {name} needs a value\n")
                    return 2
                i += 1
                value = args[i]
            output = value
        elif arg.startswith("-") and arg != "-" or report is not None:
            sys.stderr.write(f"{VIEW_USAGE}recompyle view: error: unexpected argument {arg!r}\n")
            return 2
        else:
            report = arg
        i += 1
    if report is None:
        sys.stderr.write(f"{VIEW_USAGE}recompyle view: error: give the JSON report to render\n")
        return 2
    if output is None:
        stem = report[:-5] if report.lower().endswith(".json") else report
        output = stem + ".html"
    import json

    from recompyle.export import html
    from recompyle.report import write_file
    from recompyle.sources import check_files

    try:
        with open(report, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        sys.stderr.write(f"recompyle view: error: cannot read {report}: {exc}\n")
        return 2
    checks = check_files(doc) if isinstance(doc, dict) else {}
    try:
        page = html.render(doc, file_status=checks)
    except ValueError as exc:
        sys.stderr.write(f"recompyle view: error: {report}: {exc}\n")
        return 2
    try:
        write_file(output, page)
    except OSError as exc:
        sys.stderr.write(f"recompyle view: error: cannot write {output}: {exc}\n")
        return 2
    for path, check in checks.items():
        if check.status in ("changed", "missing", "unavailable"):
            sys.stderr.write(f"recompyle view: {path}: {check.note}\n")
    return 0


def _main_importer(path: str) -> object | None:
    """The path hook's importer for ``path`` when it is a directory or a zip archive, which
    ``python PATH`` runs as ``PATH/__main__.py``; None for a plain file."""
    if not os.path.exists(path) or os.path.isfile(path) and not _is_zip(path):
        return None
    for hook in sys.path_hooks:
        try:
            return hook(os.path.abspath(path))
        except ImportError:
            continue
    return None


def _is_zip(path: str) -> bool:
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


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


def _load_script(
    path: str, args: list[str], main: types.ModuleType, tracked: bool = False
) -> types.CodeType:
    """The script's instrumented code, with ``sys.argv``, ``sys.path[0]`` and ``__main__``
    set up as ``python path`` does."""
    from recompyle.loader import instrument_source

    abspath = os.path.abspath(path)
    with open(abspath, "rb") as f:
        data = f.read()
    sys.argv[:] = [path, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(abspath))
    main.__loader__ = SourceFileLoader("__main__", abspath)
    main.__dict__["__file__"] = abspath
    if sys.version_info < (3, 15):
        # 3.15 no longer sets __cached__ on a script's __main__.
        main.__dict__["__cached__"] = None
    return instrument_source(data, abspath, "__main__", track_globals=tracked)


def _run_script(code: types.CodeType, main: types.ModuleType) -> int:
    exec(code, main.__dict__)
    return 0


def _run_main_importer(path: str, args: list[str]) -> int:
    """``python DIR`` / ``python app.zip``: the path goes first on ``sys.path`` and its
    ``__main__`` module runs as ``__main__`` (what ``runpy.run_path`` does too)."""
    import runpy

    sys.argv[:] = [path, *args]
    sys.path[0] = os.path.abspath(path)
    runpy._run_module_as_main("__main__", alter_argv=False)  # type: ignore[attr-defined]
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
            threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return 1


COMBINE_USAGE = """\
usage: python -m recompyle combine PART... -o FILE [--format FORMAT] [--per-process]

Merge profile parts (JSON reports of several processes or runs) into one report.

options:
  -o, --output FILE   where to write the merged report ('-' for stdout)
  --format FORMAT     report format, any of run's (default: from FILE's name, else json)
  --per-process       keep each process's threads apart instead of merging them by name
  -h, --help          show this help
"""


def combine_command(args: list[str]) -> int:
    """``python -m recompyle combine``: exit 0 when written, 1 when no part could be read,
    2 for a usage error or parts that cannot be combined."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m recompyle combine", usage=COMBINE_USAGE.split("\n\n")[0][len("usage: ") :]
    )
    parser.add_argument("parts", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--format")
    parser.add_argument("--per-process", action="store_true")
    if any(a in ("-h", "--help") for a in args):
        print(COMBINE_USAGE, end="")
        return 0
    opts = parser.parse_args(args)
    from recompyle.combine import CombineError, combine, read_part
    from recompyle.export import format_for_output, get_format
    from recompyle.report import render_document, write_file

    try:
        spec = get_format(opts.format) if opts.format else format_for_output(opts.output)
    except ValueError as exc:
        parser.error(f"--format: {exc}")
    fmt = "json" if spec.name == "text" and not opts.format else spec.name
    if spec.binary and opts.output == "-":
        parser.error(f"--format {fmt} writes binary data: give -o FILE")
    if opts.output != "-":
        parent = os.path.dirname(os.path.abspath(opts.output))
        if not os.path.isdir(parent):
            parser.error(f"-o {opts.output}: no directory {parent}")
    docs = [d for d in (read_part(p) for p in opts.parts) if d is not None]
    if not docs:
        print("recompyle combine: no part could be read", file=sys.stderr)
        return 1
    try:
        merged = combine(docs, roots="per-process" if opts.per_process else "by-name")
    except CombineError as exc:
        print(f"recompyle combine: {exc}", file=sys.stderr)
        return 2
    data = render_document(merged, fmt)
    if opts.output == "-":
        sys.stdout.write(data if isinstance(data, str) else data.decode("utf-8", "replace"))
    else:
        write_file(opts.output, data)
    return 0
