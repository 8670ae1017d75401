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

The text report shows ``file:line:col`` with a 1-based column, as editors do.
"""

import atexit
import os
import sys

if False:  # typing only: this module is imported at start-up, keep it light
    from collections.abc import Sequence
    from typing import IO, Any

    from recompyle.profiler import SiteStats

__all__ = [
    "FORMATS",
    "cancel_report_at_exit",
    "report_pending",
    "render_json",
    "render_text",
    "report_at_exit",
    "write_report",
]

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


def _escape_controls(text: str) -> str:
    """``text`` with every unprintable character (ESC, BEL, backspace, tab, newline, ...)
    escaped as ``repr`` writes it: a callee's source text or a file name cannot then send
    escape sequences to the terminal showing the report, nor split one site over rows."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
        where = _escape_controls(f"{_display_path(r.file)}:{r.line}:{r.col + 1}")
        callee = r.callee if len(r.callee) <= 60 else r.callee[:57] + "..."
        callee = _escape_controls(" ".join(callee.split()))
        lines.append(
            f"{r.calls:>10} {_duration(r.total_ns):>12} {_duration(r.mean_ns):>12} "
            f"{_duration(r.max_ns):>12}  {where}  {callee}"
        )
    if limit is not None and len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more sites (use --format json for all)")
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
    fmt: str = "text", output: "str | None" = None, stream: "IO[str] | None" = None
) -> None:
    """Write the current profile to ``output`` (a path) or ``stream`` (stderr by default)."""
    from recompyle.profiler import snapshot

    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    rows = snapshot()
    text = render_json(rows) if fmt == "json" else render_text(rows, limit=None if output else 40)
    if output:
        write_text_file(output, text)
    else:
        out = stream if stream is not None else sys.stderr
        out.write(text)
        out.flush()


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
    no debris (``recompyle.atomic_file``). A device, FIFO or terminal is written in place
    and a symlink through to its target; a symlink loop is refused (``OutputPathError``)."""
    from recompyle.atomic_file import resolve_output, write_atomically

    target, in_place = resolve_output(output)
    if in_place:
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return
    write_atomically(target, text.encode("utf-8"))


_at_exit: "dict[str, str | None]" = {}
_owner = [0]  # pid of the process that asked for the report


def _write_at_exit() -> None:
    from recompyle import processes

    role = processes.role()
    if role == "top" and processes.finished():
        return  # written already, at os._exit
    if role == "child":  # a child of a profiled run leaves its part to the top process
        processes.write_own_part()
        return
    if _owner[0] != os.getpid():
        # Not the process that asked for the report: a process forked outside a run that
        # collects children's parts (its profile started empty at the fork, so nothing of
        # the parent's is counted twice), or a run that never started.
        if role == "top":
            processes.has_parts()  # which removes the run's (empty) parts directory
        return
    output = _at_exit.get("output")
    fmt = _at_exit.get("format") or "text"
    try:
        if role == "top" and (processes.has_parts() or processes.per_process()):
            write_document(processes.collect(processes.own_document()), fmt, output)
        else:
            write_report(fmt, output)
    except OSError as exc:
        sys.stderr.write(f"recompyle: cannot write the report to {output!r}: {exc}\n")


def report_pending() -> bool:
    """Whether this process writes a report at exit."""
    return _owner[0] == os.getpid()


def cancel_report_at_exit() -> None:
    """No report at exit after all: the run never started (its target was not found)."""
    _owner[0] = 0


def default_format(output: "str | None") -> str:
    """JSON when the output file is named ``*.json``, text otherwise."""
    return "json" if output and output.lower().endswith(".json") else "text"


def report_at_exit(fmt: "str | None", output: "str | None") -> None:
    """Profile from now on and write the report when the interpreter exits: after the
    program's own ``atexit`` handlers and after its non-daemon threads ended. Once, with the
    last settings given."""
    from recompyle.profiler import start

    if not _at_exit:
        atexit.register(_write_at_exit)
    _at_exit["format"] = fmt or default_format(output)
    _at_exit["output"] = output
    _owner[0] = os.getpid()
    from recompyle import processes

    processes.configure(finish=_write_at_exit)
    start()
