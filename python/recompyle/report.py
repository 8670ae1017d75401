"""The report stage: the flat profile as text (stderr by default) or JSON.

JSON report (``--format json``), one object:

``version``
    Report format version (1).
``python``, ``argv``
    Interpreter version and the profiled program's ``sys.argv``.
``sites``
    One object per call site, longest ``total_ns`` first: ``file``, ``line`` (1-based),
    ``col`` (0-based UTF-8 byte offset, as ``ast``), ``end_line``, ``end_col``, ``callee``
    (the callee's source text), ``caller`` (qualified name of the enclosing function,
    ``<module>`` at top level), ``module``, ``calls``, ``total_ns``, ``mean_ns``,
    ``max_ns`` and ``raised`` (calls that ended in an exception). Times are inclusive.

The text report shows ``file:line:col`` with a 1-based character column, as editors do.
"""

import atexit
import os
import sys

if False:  # typing only: this module is imported at start-up, keep it light
    from collections.abc import Sequence
    from typing import IO, Any

    from recompyle.profiler import SiteStats

__all__ = ["FORMATS", "render_json", "render_text", "report_at_exit", "write_report"]

FORMATS = ("text", "json")
_FORMAT_VERSION = 1


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _duration(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3f} us"
    return f"{ns:.0f} ns"


_CALLEE_WIDTH = 60


def char_column(path: str, line: int, col: int) -> int:
    """The 1-based *character* column an editor shows for the UTF-8 byte offset ``col`` of
    line ``line`` of ``path`` (``ast`` and the site table count bytes: on a line with an
    ``é`` before the call they differ). The byte offset + 1 when the line cannot be read."""
    import linecache

    text = linecache.getline(path, line)
    if not text:
        return col + 1
    return len(text.encode("utf-8")[:col].decode("utf-8", "replace")) + 1


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by dropping its middle, so that the end of a
    callee (``self.session.adapters.send``: the method name) stays readable."""
    if len(text) <= width:
        return text
    # The last dotted name whole, as long as it leaves the head a few characters.
    tail = min(max((width - 3) // 2, len(text.rsplit(".", 1)[-1]) + 1), width - 13)
    return text[: width - 3 - tail] + "..." + text[-tail:]


def render_text(rows: "Sequence[SiteStats]", limit: "int | None" = None) -> str:
    total_calls = sum(r.calls for r in rows)
    lines = [
        f"recompyle flat profile: {total_calls} calls at {len(rows)} call sites "
        "(times include the callee's own calls)"
    ]
    if not rows:
        lines.append("  no instrumented call was made")
        return "\n".join(lines) + "\n"
    header = f"{'calls':>10} {'total':>12} {'mean':>12} {'max':>12}  site  callee"
    lines.append(header)
    shown = rows if limit is None else rows[:limit]
    for r in shown:
        where = f"{_display_path(r.file)}:{r.line}:{char_column(r.file, r.line, r.col)}"
        callee = shorten_middle(" ".join(r.callee.split()), _CALLEE_WIDTH)
        lines.append(
            f"{r.calls:>10} {_duration(r.total_ns):>12} {_duration(r.mean_ns):>12} "
            f"{_duration(r.max_ns):>12}  {where}  {callee}"
        )
    if limit is not None and len(rows) > limit:
        lines.append(
            f"  ... {len(rows) - limit} more sites not shown ({limit} of {len(rows)} shown, "
            "longest first; -o FILE or RECOMPYLE_OUTPUT=FILE writes them all)"
        )
    return "\n".join(lines) + "\n"


def render_json(rows: "Sequence[SiteStats]") -> str:
    import json

    doc = {
        "version": _FORMAT_VERSION,
        "python": ".".join(map(str, sys.version_info[:3])),
        "argv": list(sys.argv),
        "sites": [
            {
                "file": r.file,
                "line": r.line,
                "col": r.col,
                "end_line": r.end_line,
                "end_col": r.end_col,
                "callee": r.callee,
                "caller": r.caller,
                "module": r.module,
                "calls": r.calls,
                "total_ns": r.total_ns,
                "mean_ns": round(r.mean_ns, 1),
                "max_ns": r.max_ns,
                "raised": r.raised,
            }
            for r in rows
        ],
    }
    return json.dumps(doc, indent=1) + "\n"


def write_report(
    fmt: str = "text",
    output: "str | None" = None,
    stream: "IO[str] | None" = None,
    modules: "str | None" = None,
) -> None:
    """Write the current profile to ``output`` (a path) or ``stream`` (stderr by default);
    with ``modules`` (patterns as for ``--modules``), only the sites in matching modules."""
    from recompyle.profiler import snapshot

    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    rows = select_modules(snapshot(), modules)
    text = render_json(rows) if fmt == "json" else render_text(rows, limit=None if output else 40)
    if output:
        write_text_file(output, text)
    else:
        out = stream if stream is not None else sys.stderr
        out.write(text)
        out.flush()


def select_modules(rows: "list[SiteStats]", modules: "str | None") -> "list[SiteStats]":
    """The rows whose call site is in a module matching ``modules`` (all when None)."""
    if not modules:
        return rows
    from recompyle._core import ModuleMatcher

    matcher = ModuleMatcher(modules)
    return [r for r in rows if matcher.matches(r.module)]


def write_document(doc: "dict[str, Any]", fmt: str, output: "str | None") -> None:
    """Write a profile document (several processes merged, ``recompyle.combine``) as a
    report in ``fmt``, to ``output`` or stderr."""
    from recompyle.combine import render

    text = render(doc, fmt)
    if output:
        write_text_file(output, text)
    else:
        sys.stderr.write(text)
        sys.stderr.flush()


def write_text_file(output: str, text: str) -> None:
    """Whole or nothing for a file: a reader never sees half a report, and a failure leaves
    no debris, so the text goes to a temporary file renamed over the target. Renaming over
    anything but a regular file would replace it: ``/dev/null``, a FIFO or a terminal is
    written in place, and a symlink's target is what gets replaced."""
    target = os.path.realpath(output)
    if os.path.exists(target) and not os.path.isfile(target):
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_at_exit: "dict[str, str | None]" = {}


def _write_at_exit() -> None:
    from recompyle import processes

    role = processes.role()
    if role == "top" and processes.finished():
        return  # written already, at os._exit
    if role == "child":  # a child of a profiled run leaves its part to the top process
        processes.write_own_part()
        return
    output = _at_exit.get("output")
    fmt = _at_exit.get("format") or "text"
    try:
        if role == "top" and (processes.has_parts() or processes.per_process()):
            write_document(processes.collect(processes.own_document()), fmt, output)
        else:
            write_report(fmt, output, modules=_at_exit.get("modules"))
    except OSError as exc:
        named = _at_exit.get("named", output)
        sys.stderr.write(f"recompyle: cannot write the report to {named!r}: {exc}\n")


def default_format(output: "str | None") -> str:
    """JSON when the output file is named ``*.json``, text otherwise."""
    return "json" if output and output.lower().endswith(".json") else "text"


def report_at_exit(fmt: "str | None", output: "str | None", modules: "str | None" = None) -> None:
    """Profile from now on and write the report when the interpreter exits: after the
    program's own ``atexit`` handlers and after its non-daemon threads ended. Once, with the
    last settings given; ``modules`` keeps only the sites of matching modules."""
    from recompyle import _core

    if not _at_exit:
        atexit.register(_write_at_exit)
    _at_exit["format"] = fmt or default_format(output)
    # Resolved now: the program may chdir before it exits.
    _at_exit["output"] = os.path.abspath(output) if output else None
    _at_exit["named"] = output  # as the user wrote it, for messages
    _at_exit["modules"] = modules
    from recompyle import processes

    processes.configure(finish=_write_at_exit)
    _core.profiler_start()
