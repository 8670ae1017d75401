"""The combine stage: profile documents of several processes (or runs) merged into one.

Each process of a run, or each run on another machine, leaves a *part*: a profile document
(version 2, see ``recompyle.report``) that names itself in ``"parts"``, a list of part ids
(``"<host>:<pid>:<random hex>"``, made by ``new_part_id``). A merged document lists the ids
of every part in it, so combining is associative (``combine(combine(a, b), c)`` equals
``combine(a, b, c)``) and a part met twice, alone or inside a merged document, is refused
instead of counted twice.

What adds up, exactly: a call site is the same in two parts when its file, position, callee
text and caller are; its ``calls``, ``total_ns``, ``self_ns`` and ``raised`` add,
``max_ns`` is the larger, ``mean_ns`` is recomputed, and ``processes`` counts the parts it
was seen in. Tree nodes are the same when their paths of sites are, roots when their kind and
name are (``per_process=True`` keeps each part's roots apart, named after its process).
Timeline events are kept, moved onto a common clock when the parts say when they started
(``started_unix_ns``), and their ``dropped`` counts add. ``files`` is the union; a file whose
hash differs between parts is named in a warning and the first part's version is kept.

A part that cannot be read (cut short, not JSON, another version, not a profile) is named in
a warning and skipped; the rest are merged.
"""

from __future__ import annotations

import json
import operator
import os
import sys

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: a profiled run's children import this at start-up
    from typing import Any

__all__ = [
    "CombineError",
    "SITE_KEY_FIELDS",
    "combine",
    "main",
    "new_part_id",
    "read_part",
]

USAGE = """\
usage: python -m recompyle combine PART... -o FILE [--format FORMAT] [--per-process]

Merge profile parts (JSON reports of several processes or runs) into one report.

options:
  -o, --output FILE   where to write the merged report ('-' for stdout)
  --format FORMAT     report format, any of run's (default: from FILE's name, else json)
  --per-process       keep each process's threads apart instead of merging them by name
  -h, --help          show this help
"""

VERSION = 2

if TYPE_CHECKING:
    # A profile document (see recompyle.report), as json.loads gives it.
    Document = dict[str, Any]


class CombineError(ValueError):
    """The parts cannot be combined (the same part twice); nothing was written."""


# What makes two parts' call sites the same site (a plain tuple of these fields: merging a
# hundred parts of ten thousand sites must stay under two seconds). Not the module name: a
# script is `__main__` in one process and `__mp_main__` in multiprocessing's children.
SITE_KEY_FIELDS = ("file", "line", "col", "end_line", "end_col", "callee", "caller")
_site_key = operator.itemgetter(*SITE_KEY_FIELDS)
SiteKey = tuple


def new_part_id(pid: int | None = None) -> str:
    """A part id no other process, here or on another machine, will make."""
    pid = os.getpid() if pid is None else pid
    return f"{os.uname().nodename}:{pid}:{os.urandom(6).hex()}"


def read_part(path: str) -> Document | None:
    """The profile document in ``path``, or None with a warning naming the file and what is
    wrong with it."""
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except OSError as exc:
        _skip(path, exc.strerror or str(exc))
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        _skip(path, f"not a JSON profile ({exc})")
        return None
    problem = _problem(doc)
    if problem:
        _skip(path, problem)
        return None
    return doc


def _skip(path: str, why: str) -> None:
    import warnings

    warnings.warn(f"recompyle combine: skipped {path}: {why}", RuntimeWarning, stacklevel=3)


def _problem(doc: object) -> str | None:
    if not isinstance(doc, dict):
        return "not a profile document"
    version = doc.get("version")
    if version != VERSION:
        return f"report version {version!r}, not {VERSION}"
    if not isinstance(doc.get("sites"), list) or not isinstance(doc.get("roots", []), list):
        return "no sites"
    needed = ("file", "line", "col", "end_line", "end_col", "callee", "caller", "module")
    for row in doc["sites"]:
        if not isinstance(row, dict) or any(k not in row for k in needed):
            return "a site without its position"
    return None


class _Node:
    """A merged tree node."""

    __slots__ = ("key", "calls", "total_ns", "self_ns", "max_ns", "raised", "processes", "children")

    def __init__(self, key: SiteKey) -> None:
        self.key = key
        self.calls = self.total_ns = self.self_ns = self.max_ns = self.raised = 0
        self.processes = 0
        self.children: dict[SiteKey, _Node] = {}


class _Root:
    """A merged root (a thread or task of one or more processes)."""

    __slots__ = ("kind", "name", "thread_id", "total_ns", "processes", "children", "extra")

    def __init__(self, kind: str, name: str, thread_id: int | None) -> None:
        self.kind = kind
        self.name = name
        self.thread_id = thread_id
        self.total_ns = 0
        self.processes = 0
        self.children: dict[SiteKey, _Node] = {}
        self.extra: dict[str, Any] = {}


def combine(docs: list[Document], *, per_process: bool = False) -> Document:
    """One document holding everything in ``docs`` (each a part or an earlier merge).

    Raises ``CombineError`` when a part appears twice."""
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        for part in _part_ids(doc):
            if part in seen:
                raise CombineError(
                    f"part {part} is in both input {seen[part] + 1} and input {i + 1}: "
                    "combining it twice would count it twice"
                )
            seen[part] = i
    sites: dict[SiteKey, list[Any]] = {}  # key -> [row, processes]
    roots: dict[tuple[str, str], _Root] = {}
    files: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    dropped = 0
    has_timeline = False
    starts = [d["started_unix_ns"] for d in docs if isinstance(d.get("started_unix_ns"), int)]
    origin = min(starts) if len(starts) == len(docs) and docs else None
    wall = [d["wall_ns"] for d in docs if isinstance(d.get("wall_ns"), int)]
    for doc in docs:
        keys = [_site_key(row) for row in doc["sites"]]
        for key, row in zip(keys, doc["sites"]):
            _add_site(sites, key, row)
        root_index: list[tuple[str, str]] = []
        for root in doc.get("roots", []):
            name = str(root.get("name", ""))
            if per_process:
                name = f"{doc.get('pid', '?')}: {name}"
            rkey = (str(root.get("kind", "thread")), name)
            root_index.append(rkey)
            merged = roots.get(rkey)
            if merged is None:
                merged = roots[rkey] = _Root(rkey[0], name, root.get("thread_id"))
                if per_process:
                    merged.extra["pid"] = doc.get("pid")
            elif merged.thread_id != root.get("thread_id"):
                merged.thread_id = None  # merged across processes: no one thread id
            merged.total_ns += int(root.get("total_ns", 0))
            merged.processes += int(root.get("processes", 1))
            _add_nodes(merged.children, root.get("children", []), keys)
        for path, info in (doc.get("files") or {}).items():
            old = files.get(path)
            if old is None:
                files[path] = info
            elif isinstance(old, dict) and isinstance(info, dict):
                if old.get("sha256") != info.get("sha256"):
                    import warnings

                    warnings.warn(
                        f"recompyle combine: {path} differs between parts; "
                        "the source shown is the first part's",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        timeline = doc.get("timeline")
        if isinstance(timeline, dict):
            has_timeline = True
            dropped += int(timeline.get("dropped", 0))
            shift = doc["started_unix_ns"] - origin if origin is not None else 0
            for ev in timeline.get("events", []):
                events.append(
                    {
                        **ev,
                        "root": root_index[ev["root"]],
                        "site": keys[ev["site"]],
                        "start_ns": ev["start_ns"] + shift,
                        "end_ns": ev["end_ns"] + shift,
                    }
                )
    order = sorted(
        sites.items(),
        key=lambda kv: (-kv[1][0]["total_ns"], kv[0][0], kv[0][1], kv[0][2]),
    )
    index = {key: i for i, (key, _) in enumerate(order)}
    root_list = list(roots.values())
    root_pos = {(r.kind, r.name): i for i, r in enumerate(root_list)}
    out: Document = {
        "version": VERSION,
        "python": docs[0].get("python") if docs else None,
        "argv": docs[0].get("argv") if docs else [],
        "pid": docs[0].get("pid") if docs else None,
        "wall_ns": max(wall) if wall else None,
        "parts": list(seen),
        "processes": sum(int(d.get("processes", 1)) for d in docs) if docs else 0,
        "sites": [_site_row(row, seen_in) for _, (row, seen_in) in order],
        "roots": [_root_doc(r, index) for r in root_list],
        "timeline": None,
        "files": files,
    }
    if origin is not None:
        out["started_unix_ns"] = origin
    if has_timeline:
        events.sort(key=lambda e: (root_pos[e["root"]], e["start_ns"], -e["end_ns"]))
        out["timeline"] = {
            "dropped": dropped,
            "events": [
                {**e, "root": root_pos[e["root"]], "site": index[e["site"]]} for e in events
            ],
        }
    return out


def _part_ids(doc: Document) -> list[str]:
    parts = doc.get("parts")
    if isinstance(parts, list) and parts:
        return [str(p) for p in parts]
    # A document written without an id is named by its content: the same file given twice
    # is still refused.
    import hashlib

    text = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return [f"sha256:{hashlib.sha256(text).hexdigest()}"]


def _add_site(sites: dict[SiteKey, list[Any]], key: SiteKey, row: dict[str, Any]) -> None:
    old = sites.get(key)
    if old is None:
        sites[key] = [dict(row), row.get("processes", 1)]
        return
    merged = old[0]
    if _COUNTS <= row.keys() and _COUNTS <= merged.keys():
        merged["calls"] += row["calls"]
        merged["total_ns"] += row["total_ns"]
        merged["self_ns"] += row["self_ns"]
        merged["raised"] += row["raised"]
        if row["max_ns"] > merged["max_ns"]:
            merged["max_ns"] = row["max_ns"]
    else:  # a row that lacks some counts (an older writer): they count as 0
        for name in _SUMMED:
            merged[name] = merged.get(name, 0) + row.get(name, 0)
        merged["max_ns"] = max(merged.get("max_ns", 0), row.get("max_ns", 0))
    old[1] += row.get("processes", 1)


_SUMMED = ("calls", "total_ns", "self_ns", "raised")
_COUNTS = frozenset((*_SUMMED, "max_ns"))


def _site_row(row: dict[str, Any], processes: int) -> dict[str, Any]:
    row = dict(row)
    calls = row.get("calls", 0)
    row["mean_ns"] = round(row.get("total_ns", 0) / calls, 1) if calls else 0.0
    row["processes"] = processes
    return row


def _add_nodes(
    into: dict[SiteKey, _Node], nodes: list[dict[str, Any]], keys: list[SiteKey]
) -> None:
    for node in nodes:
        key = keys[node["site"]]
        merged = into.get(key)
        if merged is None:
            merged = into[key] = _Node(key)
        get = node.get
        merged.calls += get("calls", 0)
        merged.total_ns += get("total_ns", 0)
        merged.self_ns += get("self_ns", 0)
        merged.raised += get("raised", 0)
        max_ns = get("max_ns", 0)
        if max_ns > merged.max_ns:
            merged.max_ns = max_ns
        merged.processes += get("processes", 1)
        children = get("children")
        if children:
            _add_nodes(merged.children, children, keys)


def _node_doc(node: _Node, index: dict[SiteKey, int]) -> dict[str, Any]:
    return {
        "site": index[node.key],
        "calls": node.calls,
        "total_ns": node.total_ns,
        "self_ns": node.self_ns,
        "max_ns": node.max_ns,
        "raised": node.raised,
        "processes": node.processes,
        "children": [_node_doc(c, index) for c in node.children.values()],
    }


def _root_doc(root: _Root, index: dict[SiteKey, int]) -> dict[str, Any]:
    return {
        "kind": root.kind,
        "name": root.name,
        "thread_id": root.thread_id,
        "total_ns": root.total_ns,
        "processes": root.processes,
        **root.extra,
        "children": [_node_doc(c, index) for c in root.children.values()],
    }


def main(args: list[str]) -> int:
    """``python -m recompyle combine``: exit 0 when written, 1 when no part could be read,
    2 for a usage error or parts that cannot be combined."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m recompyle combine", usage=USAGE.split("\n\n")[0][len("usage: ") :]
    )
    parser.add_argument("parts", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--format")
    parser.add_argument("--per-process", action="store_true")
    if any(a in ("-h", "--help") for a in args):
        print(USAGE, end="")
        return 0
    opts = parser.parse_args(args)
    from recompyle.export import format_for_output, get_format

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
        merged = combine(docs, per_process=opts.per_process)
    except CombineError as exc:
        print(f"recompyle combine: {exc}", file=sys.stderr)
        return 2
    data = render(merged, fmt)
    if opts.output == "-":
        sys.stdout.write(data if isinstance(data, str) else data.decode("utf-8", "replace"))
    else:
        from recompyle.report import write_file

        write_file(opts.output, data)
    return 0


def render(doc: Document, fmt: str, *, min_percent: float | None = None) -> str | bytes:
    """A (merged) document as a report in ``fmt``: its JSON, the flat text table, or any
    format of ``recompyle.export`` (``recompyle.report.render_document``)."""
    from recompyle.report import render_document

    return render_document(doc, fmt, min_percent=min_percent)
