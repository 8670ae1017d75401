"""The report stage: the flat profile as text (stderr by default) or JSON, and the profile
document in the formats of ``recompyle.export`` (speedscope, Chrome trace, pstats,
callgrind, collapsed stacks, a text call tree).

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

__all__ = ["render_json", "render_text", "report_at_exit", "write_file", "write_report"]

_FORMAT_VERSION = 1


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def render_text(rows: "Sequence[SiteStats]", limit: "int | None" = None) -> str:
    from recompyle.export._document import duration as _duration

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
        where = f"{_display_path(r.file)}:{r.line}:{r.col + 1}"
        callee = r.callee if len(r.callee) <= 60 else r.callee[:57] + "..."
        callee = " ".join(callee.split())
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
    add_files(doc)
    return json.dumps(doc, indent=1) + "\n"


def add_files(doc: "dict[str, Any]") -> "dict[str, Any]":
    """Fill the document's ``files`` section (each site's file: SHA-256 and source text,
    see ``recompyle.sources``) unless it has one: ``recompyle view`` shows a saved report's
    source from it and tells a file that changed since."""
    if not doc.get("files"):
        from recompyle.sources import file_entries

        doc["files"] = file_entries(str(s["file"]) for s in doc.get("sites") or ())
    return doc


def write_report(
    fmt: str = "text",
    output: "str | None" = None,
    stream: "IO[str] | None" = None,
    *,
    min_percent: "float | None" = None,
) -> None:
    """Write the current profile in format ``fmt`` (a name in ``recompyle.export``) to
    ``output`` (a path) or ``stream`` (stderr by default). ``min_percent`` is the ``tree``
    format's threshold."""
    from recompyle.export import get_format

    spec = get_format(fmt)
    if spec.module is None:
        from recompyle.profiler import snapshot

        rows = snapshot()
        limit = None if output else 40
        data: str | bytes = render_json(rows) if fmt == "json" else render_text(rows, limit)
    else:
        if spec.binary and not output:
            raise ValueError(f"the {fmt} format is binary: it needs an output file")
        doc = add_files(build_document())
        data = spec.render(doc, min_percent=min_percent)
        _say_dropped(doc)
    if output:
        write_file(output, data)
    else:
        out = stream if stream is not None else sys.stderr
        out.write(data if isinstance(data, str) else data.decode("utf-8", "replace"))
        out.flush()


def _say_dropped(doc: "dict[str, Any]") -> None:
    """A timeline that reached its cap is incomplete: say so, once, where people look."""
    timeline = doc.get("timeline") or {}
    dropped = timeline.get("dropped", 0)
    if dropped:
        kept = len(timeline.get("events", ()))
        sys.stderr.write(
            f"recompyle: the timeline kept {kept} events and dropped {dropped} (its cap; see "
            "--timeline-cap and --min-duration); the call tree is complete\n"
        )


def write_file(output: str, data: "str | bytes") -> None:
    """Whole or nothing for a file: a reader never sees half a report, and a failure leaves
    no debris, so the data goes to a temporary file renamed over the target. Renaming over
    anything but a regular file would replace it: ``/dev/null``, a FIFO or a terminal is
    written in place, and a symlink's target is what gets replaced. Text is UTF-8."""
    mode, encoding = ("wb", None) if isinstance(data, bytes) else ("w", "utf-8")
    target = os.path.realpath(output)
    if os.path.exists(target) and not os.path.isfile(target):
        with open(target, mode, encoding=encoding) as f:
            f.write(data)
        return
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        with open(tmp, mode, encoding=encoding) as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


write_text_file = write_file  # the name the dependency graph writer uses


_at_exit: "dict[str, Any]" = {}


def _write_at_exit() -> None:
    output = _at_exit.get("output")
    fmt = _at_exit.get("format") or "text"
    try:
        write_report(fmt, output, min_percent=_at_exit.get("min_percent"))
    except OSError as exc:
        sys.stderr.write(f"recompyle: cannot write the report to {output!r}: {exc}\n")
    except Exception as exc:  # the program's exit status and output stay its own
        sys.stderr.write(f"recompyle: cannot write the {fmt} report: {exc}\n")


def default_format(output: "str | None") -> str:
    """The format an output file's name implies (``*.json`` is JSON, ``*.prof`` pstats...;
    see ``recompyle.export``), text otherwise."""
    from recompyle.export import format_for_output

    return format_for_output(output).name


def report_at_exit(
    fmt: "str | None",
    output: "str | None",
    *,
    timeline: bool = False,
    timeline_cap: "int | None" = None,
    min_duration_ns: "int | None" = None,
    min_percent: "float | None" = None,
) -> None:
    """Profile from now on and write the report when the interpreter exits: after the
    program's own ``atexit`` handlers and after its non-daemon threads ended. Once, with the
    last settings given. A format that needs a timeline (``chrome``) records one; the
    timeline options are ``Profiler``'s."""
    from recompyle import _core
    from recompyle.export import get_format

    fmt = fmt or default_format(output)
    timeline = timeline or get_format(fmt).needs_timeline
    if not _at_exit:
        atexit.register(_write_at_exit)
    _at_exit["format"] = fmt
    _at_exit["output"] = output
    _at_exit["min_percent"] = min_percent
    if timeline or timeline_cap is not None or min_duration_ns is not None:
        from recompyle.profiler import Profiler

        Profiler(
            timeline=timeline, timeline_cap=timeline_cap, min_duration_ns=min_duration_ns
        ).start()
    else:
        _core.profiler_start()
