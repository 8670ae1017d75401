"""The report stage: the profile as text (stderr by default) or JSON, and the profile
document in the formats of ``recompyle.export`` (speedscope, Chrome trace, pstats,
callgrind, collapsed stacks, a text call tree, an HTML page).

JSON report (``--format json``): the *profile document*, one object, version 2 (a
superset of version 1, which had ``version``, ``python``, ``argv`` and ``sites``):

``version``
    Report format version (2).
``python``, ``argv``, ``pid``
    Interpreter version, the profiled program's ``sys.argv``, its process id.
``wall_ns``
    Wall time the profile covers (the profiler's running time), or ``null``.
``sites``
    One object per call site, longest ``total_ns`` first: ``file``, ``line`` (1-based),
    ``col`` (0-based UTF-8 byte offset, as ``ast``), ``end_line``, ``end_col``, ``callee``
    (the callee's source text), ``caller`` (qualified name of the enclosing function,
    ``<module>`` at top level), ``module``, ``calls``, ``total_ns``, ``self_ns`` (the
    calls' time minus the time of reported calls inside them), ``mean_ns``, ``max_ns``,
    ``raised`` (calls that ended in an exception) and ``untimed`` (of ``calls``, those
    made deeper than 200 nested reported calls: counted, their time inside the enclosing
    call's). Times are inclusive: a recursive site's ``total_ns`` counts the inner calls'
    time again, ``self_ns`` does not.
``roots``
    One calling-context tree per thread: ``kind`` (``"thread"``), ``name`` (the thread's
    name), ``thread_id``, ``total_ns`` (its top-level calls' time) and ``children``, each
    a node ``{"site": <index into sites>, "calls", "total_ns", "self_ns", "max_ns",
    "raised", "untimed", "children"}``: the site reached through its ancestors' sites.
    A call at a site already on the path is counted at that ancestor (recursion collapsed),
    without adding its time to the ancestor's ``total_ns`` again.
``timeline``
    ``null``, or when a timeline was recorded ``{"dropped": <events over the cap>,
    "events": [{"root", "site", "start_ns", "end_ns", "raised"}, ...]}`` with times from
    the profile's start, ordered by root then start; per root the events nest.

The text report shows ``file:line:col`` with a 1-based column, as editors do.
"""

import atexit
import os
import sys

if False:  # typing only: this module is imported at start-up, keep it light
    from collections.abc import Sequence
    from typing import IO, Any

    from recompyle.profiler import CallNode, Profiler, ProfileView, SiteStats

__all__ = [
    "add_files",
    "build_document",
    "render_json",
    "render_text",
    "report_at_exit",
    "write_file",
    "write_report",
]

_FORMAT_VERSION = 2


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


def _site_row(r: "SiteStats") -> dict:
    return {
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
        "self_ns": r.self_ns,
        "mean_ns": round(r.mean_ns, 1),
        "max_ns": r.max_ns,
        "raised": r.raised,
        "untimed": r.untimed,
    }


def build_document(view: "ProfileView | None" = None, argv: "list[str] | None" = None) -> dict:
    """The profile document (version 2, described in this module's docstring) of what one
    profiler saw (``Profiler.view()``; by default the run's profiler, see
    ``report_at_exit``, else everything recorded); the exporters and the HTML page read
    only this."""
    if view is None:
        view = run_view()
    index = {id(s): i for i, s in enumerate(view.sites)}

    def node(n: "CallNode") -> dict:
        return {
            "site": index[id(n.site)],
            "calls": n.calls,
            "total_ns": n.total_ns,
            "self_ns": n.self_ns,
            "max_ns": n.max_ns,
            "raised": n.raised,
            "untimed": n.untimed,
            "children": [node(c) for c in n.children],
        }

    timeline = None
    if view.timeline is not None:
        timeline = {
            "dropped": view.timeline.dropped,
            "events": [
                {
                    "root": e.root,
                    "site": e.site,
                    "start_ns": e.start_ns,
                    "end_ns": e.end_ns,
                    "raised": e.raised,
                }
                for e in view.timeline.events
            ],
        }
    return {
        "version": _FORMAT_VERSION,
        "python": ".".join(map(str, sys.version_info[:3])),
        "argv": list(sys.argv if argv is None else argv),
        "pid": os.getpid(),
        "wall_ns": view.wall_ns,
        "sites": [_site_row(r) for r in view.sites],
        "roots": [
            {
                "kind": r.kind,
                "name": r.name,
                "thread_id": r.thread_id,
                "total_ns": r.total_ns,
                "children": [node(c) for c in r.children],
            }
            for r in view.roots
        ],
        "timeline": timeline,
    }


def run_view() -> "ProfileView":
    """What the run's profiler saw (``report_at_exit``), else everything recorded so far."""
    from recompyle.profiler import whole_view

    prof = _run_profiler.get("profiler")
    return prof.view() if prof is not None else whole_view()


def render_json(view: "ProfileView") -> str:
    import json

    return json.dumps(add_files(build_document(view)), indent=1) + "\n"


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
    """Write the run's profile in format ``fmt`` (a name in ``recompyle.export``) to
    ``output`` (a path) or ``stream`` (stderr by default): what the run's profiler saw
    (``report_at_exit``), else everything recorded so far. ``min_percent`` is the ``tree``
    format's threshold."""
    from recompyle.export import get_format

    spec = get_format(fmt)
    if spec.binary and not output:
        raise ValueError(f"the {fmt} format is binary: it needs an output file")
    view = run_view()
    data: str | bytes
    if fmt == "text":
        data = render_text(view.sites, limit=None if output else 40)
    else:
        doc = add_files(build_document(view))
        if fmt == "json":
            import json

            data = json.dumps(doc, indent=1) + "\n"
        else:
            data = spec.render(doc, min_percent=min_percent)
        _say_dropped(doc)
    if output:
        write_file(output, data)
    else:
        out = stream if stream is not None else sys.stderr
        out.write(data if isinstance(data, str) else data.decode("utf-8", "replace"))
        out.flush()


def render_document(
    doc: "dict[str, Any]",
    fmt: str,
    *,
    limit: "int | None" = None,
    min_percent: "float | None" = None,
) -> "str | bytes":
    """A profile document in format ``fmt``: for documents that are not one profiler's
    view (the pytest plugin's, with a root per test, merged from xdist workers)."""
    if fmt == "text":
        from dataclasses import fields

        from recompyle.profiler import SiteStats

        names = {f.name for f in fields(SiteStats)}
        rows = [SiteStats(**{k: v for k, v in s.items() if k in names}) for s in doc["sites"]]
        return render_text(rows, limit)
    if fmt == "json":
        import json

        return json.dumps(doc, indent=1) + "\n"
    from recompyle.export import get_format

    return get_format(fmt).render(doc, min_percent=min_percent)


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
# The run's own profiler (started by report_at_exit): one among any the program starts.
_run_profiler: "dict[str, Profiler]" = {}


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
    last settings given (the profiler, with its timeline options, is started once). A
    format that needs a timeline (``chrome``) records one."""
    from recompyle.export import get_format
    from recompyle.profiler import Profiler

    fmt = fmt or default_format(output)
    timeline = timeline or get_format(fmt).needs_timeline
    if not _at_exit:
        atexit.register(_write_at_exit)
    _at_exit["format"] = fmt
    _at_exit["output"] = output
    _at_exit["min_percent"] = min_percent
    if "profiler" not in _run_profiler:
        options: dict[str, int] = {}
        if timeline_cap is not None:
            options["timeline_cap"] = timeline_cap
        if min_duration_ns is not None:
            options["min_duration_ns"] = min_duration_ns
        _run_profiler["profiler"] = Profiler(timeline=timeline, **options).start()
