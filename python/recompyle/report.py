"""The report stage: the profile as text (stderr by default) or JSON, and the profile
document in the formats of ``recompyle.export`` (speedscope, Chrome trace, pstats,
callgrind, collapsed stacks, a text call tree, an HTML page).

JSON report (``--format json``): the *profile document* (``recompyle.document``).

The text report shows ``file:line:col`` with a 1-based character column, as editors do.
"""

import atexit
import os
import sys
import time

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: this module is imported at start-up, keep it light
    from collections.abc import Sequence
    from typing import IO, Any, Optional, Union

    from recompyle.profiler import Profiler, ProfileView, SiteStats

__all__ = [
    "add_files",
    "build_document",
    "cancel_report_at_exit",
    "render_json",
    "render_text",
    "report_pending",
    "report_at_exit",
    "write_file",
    "write_report",
]


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


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


def _escape_controls(text: str) -> str:
    """``text`` with every unprintable character (ESC, BEL, backspace, tab, newline, ...)
    escaped as ``repr`` writes it: a callee's source text or a file name cannot then send
    escape sequences to the terminal showing the report, nor split one site over rows. A
    lone surrogate from ``os.fsdecode`` (a path byte that is not UTF-8) stays: it is written
    back as the path's own byte, which is no control character."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or "\udc80" <= c <= "\udcff" else repr(c)[1:-1] for c in text
    )


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
        where = f"{_display_path(r.file)}:{r.line}:{char_column(r.file, r.line, r.col)}"
        where = _escape_controls(where)
        callee = _escape_controls(shorten_middle(" ".join(r.callee.split()), _CALLEE_WIDTH))
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


def build_document(
    view: "Optional[ProfileView]" = None, argv: "Optional[list[str]]" = None
) -> dict:
    """The profile document (``recompyle.document``) of what one profiler saw
    (``Profiler.view()``; by default the run's profiler, see ``report_at_exit``, else
    everything recorded)."""
    from recompyle import document

    return document.build_document(run_view() if view is None else view, argv=argv)


def run_view() -> "ProfileView":
    """What the run's profiler saw (``report_at_exit``), else everything recorded so far."""
    from recompyle.profiler import whole_view

    prof = _run_profiler.get("profiler")
    return prof.view() if prof is not None else whole_view()


def json_text(doc: "dict[str, Any]") -> str:
    """The document as JSON text, one line: the C encoder (an indented dump is encoded in
    Python, and took most of a minute for the jinja2 suite's per-test profile)."""
    import json

    return json.dumps(doc, separators=(",", ":")) + "\n"


def render_json(view: "ProfileView") -> str:
    return json_text(add_files(build_document(view)))


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
    modules: "str | None" = None,
    *,
    min_percent: "float | None" = None,
) -> None:
    """Write the run's profile in format ``fmt`` (a name in ``recompyle.export``) to
    ``output`` (a path) or ``stream`` (stderr by default): what the run's profiler saw
    (``report_at_exit``), else everything recorded so far; with ``modules`` (patterns as for
    ``--modules``), only the sites in matching modules. ``min_percent`` is the ``tree``
    format's threshold."""
    import dataclasses

    from recompyle.export import get_format

    spec = get_format(fmt)
    if spec.binary and not output:
        raise ValueError(f"the {fmt} format is binary: it needs an output file")
    view = run_view()
    if modules:
        kept = select_modules(view.sites, modules)
        pos = {id(site): i for i, site in enumerate(kept)}
        timeline = view.timeline
        if timeline is not None:  # events name sites by position: renumber them
            events = tuple(
                dataclasses.replace(e, site=pos[id(view.sites[e.site])])
                for e in timeline.events
                if id(view.sites[e.site]) in pos
            )
            timeline = dataclasses.replace(timeline, events=events)
        view = dataclasses.replace(view, sites=kept, timeline=timeline)
    data: Union[str, bytes]
    if fmt == "text":
        data = render_text(view.sites, limit=None if output else 40)
    else:
        doc = add_files(build_document(view))
        if fmt == "json":
            data = json_text(doc)
        else:
            data = spec.render(doc, min_percent=min_percent)
        _say_dropped(doc)
    if output:
        write_file(output, data)
    else:
        out = stream if stream is not None else sys.stderr
        out.write(data if isinstance(data, str) else data.decode("utf-8", "replace"))
        out.flush()


def select_modules(rows: "list[SiteStats]", modules: "str | None") -> "list[SiteStats]":
    """The rows whose call site is in a module matching ``modules`` (all when None)."""
    if not modules:
        return rows
    from recompyle._core import ModuleMatcher

    matcher = ModuleMatcher(modules)
    return [r for r in rows if matcher.matches(r.module)]


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
        return json_text(doc)
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


def write_document(
    doc: "dict[str, Any]", fmt: str, output: "str | None", *, min_percent: "float | None" = None
) -> None:
    """Write a profile document (several processes merged, ``recompyle.combine``) as a
    report in ``fmt`` (any format of ``recompyle.export``), to ``output`` or stderr."""
    data = render_document(doc, fmt, min_percent=min_percent)
    _say_dropped(doc)
    if output:
        write_file(output, data)
    else:
        sys.stderr.write(data if isinstance(data, str) else data.decode("utf-8", "replace"))
        sys.stderr.flush()


def write_file(output: str, data: "str | bytes") -> None:
    """Whole or nothing for a file: a reader never sees half a report, and a failure leaves
    no debris (``recompyle.atomic_file``). A device, FIFO or terminal is written in place
    and a symlink through to its target; a symlink loop is refused (``OutputPathError``).
    Text is UTF-8, a path's own bytes kept (surrogateescape)."""
    from recompyle.atomic_file import resolve_output, write_atomically

    target, in_place = resolve_output(output)
    if in_place:
        if isinstance(data, bytes):
            with open(target, "wb") as f:
                f.write(data)
        else:
            with open(target, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(data)
        return
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    write_atomically(target, data)


write_text_file = write_file  # the name the dependency graph writer uses


_at_exit: "dict[str, Any]" = {}
_owner = [0]  # pid of the process that asked for the report
# The run's own profiler (started by report_at_exit): one among any the program starts.
_run_profiler: "dict[str, Profiler]" = {}
_started_unix_ns: "list[int]" = []


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
            doc = processes.collect(processes.own_document())
            write_document(doc, fmt, output, min_percent=_at_exit.get("min_percent"))
        else:
            write_report(
                fmt,
                output,
                modules=_at_exit.get("modules"),
                min_percent=_at_exit.get("min_percent"),
            )
    except OSError as exc:
        named = _at_exit.get("named", output)
        sys.stderr.write(f"recompyle: cannot write the report to {named!r}: {exc}\n")
    except Exception as exc:  # the program's exit status and output stay its own
        sys.stderr.write(f"recompyle: cannot write the {fmt} report: {exc}\n")


def report_pending() -> bool:
    """Whether this process writes a report at exit."""
    return _owner[0] == os.getpid()


def cancel_report_at_exit() -> None:
    """No report at exit after all: the run never started (its target was not found)."""
    _owner[0] = 0


def default_format(output: "str | None") -> str:
    """The format an output file's name implies (``*.json`` is JSON, ``*.prof`` pstats...;
    see ``recompyle.export``), text otherwise."""
    from recompyle.export import format_for_output

    return format_for_output(output).name


def report_at_exit(
    fmt: "str | None",
    output: "str | None",
    modules: "str | None" = None,
    *,
    timeline: bool = False,
    timeline_cap: "int | None" = None,
    min_duration_ns: "int | None" = None,
    min_percent: "float | None" = None,
) -> None:
    """Profile from now on and write the report when the interpreter exits: after the
    program's own ``atexit`` handlers and after its non-daemon threads ended. Once, with the
    last settings given (the profiler, with its timeline options, is started once); ``modules``
    keeps only the sites of matching modules. A format that needs a timeline (``chrome``)
    records one."""
    from recompyle.export import get_format
    from recompyle.profiler import Profiler

    fmt = fmt or default_format(output)
    timeline = timeline or get_format(fmt).needs_timeline
    if not _at_exit:
        atexit.register(_write_at_exit)
    _at_exit["format"] = fmt
    # Resolved now: the program may chdir before it exits.
    _at_exit["output"] = os.path.abspath(output) if output else None
    _at_exit["named"] = output  # as the user wrote it, for messages
    _at_exit["modules"] = modules
    _at_exit["min_percent"] = min_percent
    _owner[0] = os.getpid()
    from recompyle import processes

    processes.configure(document=_own_document, finish=_write_at_exit)
    if "profiler" not in _run_profiler:
        # Unset options keep the Profiler's own defaults (ints, by keyword).
        options: dict[str, Any] = {}
        if timeline_cap is not None:
            options["timeline_cap"] = timeline_cap
        if min_duration_ns is not None:
            options["min_duration_ns"] = min_duration_ns
        _started_unix_ns.append(time.time_ns())
        _run_profiler["profiler"] = Profiler(timeline=timeline, **options).start()


def profile_as_child() -> None:
    """A child of a profiled run (``recompyle.processes``): profile as the run does, call tree
    included, and let ``processes`` write this process's part from that profile. The native
    recording starts directly (everything it records is this child's): importing
    ``recompyle.profiler`` here would cost every child its dataclasses at start-up."""
    from recompyle import _core, processes

    processes.configure(document=_own_document)
    if not _started_unix_ns:
        _started_unix_ns.append(time.time_ns())
        _core.profiler_start(True)


def _own_document() -> "dict[str, Any]":
    """This process's part for ``recompyle.processes``: the run profiler's document, with
    the wall-clock start that lines up the parts' timelines."""
    doc = build_document()
    doc["started_unix_ns"] = _started_unix_ns[0] if _started_unix_ns else time.time_ns()
    doc.setdefault("files", {})
    return doc
