"""The combine stage: profile documents of several processes, runs or tests merged into one
(the one merge of the project: ``python -m recompyle combine``, the top process of a run
(``recompyle.processes``) and the pytest plugin all use ``combine``).

Each process of a run, or each run on another machine, leaves a *part*: a profile document
(version 2, see ``recompyle.report``) that names itself in ``"parts"``, a list of part ids
(``"<host>:<pid>:<random hex>"``, made by ``new_part_id``). A merged document lists the ids
of every part in it, so combining is associative (``combine(combine(a, b), c)`` equals
``combine(a, b, c)``) and a part met twice, alone or inside a merged document, is refused
instead of counted twice.

What adds up, exactly: a call site is the same in two parts when its file, position, callee
text and caller are; its ``calls``, ``total_ns``, ``self_ns`` and ``raised`` add,
``max_ns`` is the larger, ``mean_ns`` is recomputed, and ``processes`` counts the parts it
was seen in. Tree nodes are the same when their paths of sites are; roots combine by a
policy (``ROOTS_POLICIES``): by kind and name, apart per process, or kept as they are.
Timeline events are kept, moved onto a common clock when the parts say when they started
(``started_unix_ns``), and their ``dropped`` counts add. ``files`` is the union; a file whose
hash differs between parts is named in a warning and the first part's version is kept.

A part that cannot be read (cut short, not JSON, another version, not a profile) is named in
a warning and skipped; the rest are merged. A part may name the modules the run's patterns
selected in its process (``selected_modules``); a merge holds the union, so the top process
can tell a pattern that matched nothing anywhere from one that only a child imported.
"""

from __future__ import annotations

import operator
import os

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: a profiled run's children import this at start-up
    from typing import Any

__all__ = [
    "CombineError",
    "SITE_KEY_FIELDS",
    "combine",
    "fold",
    "new_part_id",
    "read_part",
    "ROOTS_POLICIES",
]

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
    import json  # not at the top: children import this module for new_part_id

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
    if not _part_ids(doc):
        # A report written without an id is named by its content: the same file given
        # twice is still refused.
        import hashlib

        text = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        doc["parts"] = [f"sha256:{hashlib.sha256(text).hexdigest()}"]
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


# How the roots (threads, tasks, tests) of the documents combine:
#   "by-name"      the same kind and name in several documents is one root (the main threads of
#                  a run's processes are one "MainThread"; its nodes count the processes);
#   "per-process"  each document's roots kept apart, named "<pid>: <name>" (``--per-process``);
#   "apart"        each document's roots kept as they are, in order (the pytest plugin: each
#                  test's profile is one root named by the test).
ROOTS_POLICIES = ("by-name", "per-process", "apart")

# Tree nodes are merged under their parent by the merged site index (an int hashes faster
# than the site's key tuple).
_TOTAL = 1  # the total_ns of a totals tuple
_items = operator.itemgetter
_node_counts = operator.itemgetter("calls", "total_ns", "self_ns", "max_ns", "raised")
_row_counts = operator.itemgetter("calls", "total_ns", "self_ns", "max_ns", "raised")
_COUNT_FIELDS = ("calls", "total_ns", "self_ns", "max_ns", "raised")


class _Root:
    """A merged root (a thread or task of one or more processes, or a test)."""

    __slots__ = ("kind", "name", "thread_id", "total_ns", "processes", "tasks", "node", "extra")

    def __init__(self, kind: str, name: str, thread_id: int | None, node: int) -> None:
        self.kind = kind
        self.name = name
        self.thread_id = thread_id
        self.total_ns = 0
        self.processes = 0
        self.tasks = 0  # asyncio tasks the merged roots held
        self.node = node  # its id in the merged trees (``_Tree``)
        self.extra: dict[str, Any] = {}


def combine(
    docs: list[Document],
    *,
    roots: str = "by-name",
    offsets_ns: list[int] | None = None,
) -> Document:
    """One document holding everything in ``docs`` (each a part, an earlier merge, or a
    test's profile): sites and tree nodes added up, ``roots`` combined by the policy named
    (``ROOTS_POLICIES``). ``offsets_ns`` puts each document's timeline on the merged clock;
    without it, the parts' ``started_unix_ns`` do (when every part has one).

    Raises ``CombineError`` when a part id appears twice. Documents without part ids (a
    test's profile) are not parts: they are merged, and count no process."""
    if roots not in ROOTS_POLICIES:
        raise ValueError(f"roots={roots!r} is not one of {', '.join(ROOTS_POLICIES)}")
    import gc

    # A merge allocates a tuple per site row and tree node of every part, all kept until
    # the end: the cyclic collector would walk them (and the parts) again and again for
    # nothing, since none is in a cycle. Paused for the merge, as it was found after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _combine(docs, roots, offsets_ns)
    finally:
        if collecting:
            gc.enable()


def _combine(docs: list[Document], roots: str, offsets_ns: list[int] | None) -> Document:
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        for part in _part_ids(doc):
            if part in seen:
                raise CombineError(
                    f"part {part} is in both input {seen[part] + 1} and input {i + 1}: "
                    "combining it twice would count it twice"
                )
            seen[part] = i
    counting = bool(seen)  # processes are counted when the inputs are processes' parts
    index: dict[SiteKey, int] = {}
    rows: list[dict[str, Any]] = []  # the first row seen of each site (its text fields)
    counts = _Counts()
    tree = _Tree()
    merged_roots: dict[Any, _Root] = {}
    files: dict[str, Any] = {}
    selected: set[str] = set()
    events: list[tuple[Any, int, dict[str, Any], int]] = []
    dropped = 0
    has_timeline = False
    if offsets_ns is None:
        starts = [d.get("started_unix_ns") for d in docs]
        stamped = [s for s in starts if isinstance(s, int)]
        origin = min(stamped) if docs and len(stamped) == len(starts) else None
        shifts = [s - origin for s in stamped] if origin is not None else [0] * len(docs)
    else:
        origin = None
        shifts = list(offsets_ns)
    walls = [d.get("wall_ns") for d in docs]
    known = [w for w in walls if isinstance(w, int)]
    if docs and len(known) == len(walls) and (origin is not None or offsets_ns):
        # On one clock: from the first start to the last end.
        wall_ns: int | None = max(s + w for s, w in zip(shifts, known)) - min(shifts)
    else:  # processes of one run overlap: the longest
        wall_ns = max((w for w in walls if isinstance(w, int)), default=None)
    for doc_i, doc in enumerate(docs):
        sites = doc["sites"]
        remap = _add_sites(index, rows, counts, sites, counting)
        root_keys: list[Any] = []
        for root_i, root in enumerate(doc.get("roots", [])):
            name = str(root.get("name", ""))
            kind = str(root.get("kind", "thread"))
            if roots == "per-process":
                name = f"{doc.get('pid', '?')}: {name}"
            rkey = (kind, name) if roots != "apart" else (doc_i, root_i)
            root_keys.append(rkey)
            merged = merged_roots.get(rkey)
            if merged is None:
                merged = merged_roots[rkey] = _Root(
                    kind, name, root.get("thread_id"), tree.root_id()
                )
                if roots == "per-process":
                    merged.extra["pid"] = doc.get("pid")
                elif roots == "apart":
                    merged.extra = {k: v for k, v in root.items() if k not in _ROOT_FIELDS}
            elif merged.thread_id != root.get("thread_id"):
                merged.thread_id = None  # merged across processes: no one thread id
            merged.total_ns += int(root.get("total_ns", 0))
            merged.processes += int(root.get("processes", 1))
            merged.tasks += int(root.get("tasks") or 0)
            tree.add(merged.node, root.get("children", ()), remap, counting)
        _add_files(files, doc.get("files") or {})
        selected.update(doc.get("selected_modules") or ())
        timeline = doc.get("timeline")
        if isinstance(timeline, dict):
            has_timeline = True
            dropped += int(timeline.get("dropped", 0))
            shift = shifts[doc_i]
            for ev in timeline.get("events", []):
                events.append((root_keys[ev["root"]], remap[ev["site"]], ev, shift))
    acc = [counts.totals(i) for i in range(len(rows))]
    order = sorted(
        range(len(rows)),
        key=lambda i: (-acc[i][_TOTAL], rows[i]["file"], rows[i]["line"], rows[i]["col"]),
    )
    new_index = [0] * len(rows)
    for new, old in enumerate(order):
        new_index[old] = new
    root_list = list(merged_roots.values())
    root_pos = {key: i for i, key in enumerate(merged_roots)}
    first = docs[0] if docs else {}
    out: Document = {
        k: v for k, v in first.items() if k not in _COMPUTED
    }  # the first document's other header fields (python, argv, pid...)
    out.update(
        version=VERSION,
        python=first.get("python"),
        argv=first.get("argv", []),
        pid=first.get("pid"),
        wall_ns=wall_ns,
        sites=[_site_row(rows[i], acc[i], counting) for i in order],
        roots=[_root_doc(r, tree, new_index, counting) for r in root_list],
        timeline=None,
        files=files,
    )
    if counting:
        out["parts"] = list(seen)
        out["processes"] = sum(int(d.get("processes", 1)) for d in docs if _part_ids(d))
    if selected:
        out["selected_modules"] = sorted(selected)
    if origin is not None:
        out["started_unix_ns"] = origin
    if has_timeline:
        placed = [
            {
                **ev,
                "root": root_pos[rkey],
                "site": new_index[site],
                "start_ns": ev["start_ns"] + shift,
                "end_ns": ev["end_ns"] + shift,
            }
            for rkey, site, ev, shift in events
        ]
        placed.sort(key=lambda e: (e["root"], e["start_ns"], -e["end_ns"]))
        out["timeline"] = {"dropped": dropped, "events": placed}
    return out


# Header fields combine computes; any other field of the first document is kept.
_COMPUTED = frozenset(
    ("version", "python", "argv", "pid", "wall_ns", "parts", "processes", "sites", "roots",
     "timeline", "files", "started_unix_ns", "selected_modules")
)  # fmt: skip
_ROOT_FIELDS = frozenset(
    ("kind", "name", "thread_id", "tasks", "total_ns", "processes", "children")
)


def _part_ids(doc: Document) -> list[str]:
    parts = doc.get("parts")
    return [str(p) for p in parts] if isinstance(parts, list) else []


def _add_sites(
    index: dict[SiteKey, int],
    rows: list[dict[str, Any]],
    merged: _Counts,
    sites: list[dict[str, Any]],
    counting: bool,
) -> list[int]:
    """Add a document's site rows; the merged index of each (the document's site index
    → merged). Each row's counts go, as one tuple, to its site's bucket, summed at the end:
    the work per row is done by C loops (``map``), not by Python statements, which keeps
    merging a hundred parts of ten thousand sites to a fraction of a second."""
    from collections import deque  # here: children import this module at exit

    keys = list(map(_site_key, sites))
    try:
        remap = list(map(index.__getitem__, keys))
    except KeyError:  # sites not met before
        for key, row in zip(keys, sites):
            if key not in index:
                index[key] = len(rows)
                rows.append(row)
                merged.buckets.append([])
                merged.extra.append(0)
        remap = list(map(index.__getitem__, keys))
    try:
        counts = list(map(_row_counts, sites))
    except KeyError:  # a row that lacks some counts (an older writer): they count as 0
        counts = [tuple(row.get(f, 0) for f in _COUNT_FIELDS) for row in sites]
    if remap:
        targets = (merged.buckets[remap[0]],) if len(remap) == 1 else _items(*remap)(merged.buckets)
        deque(map(list.append, targets, counts), maxlen=0)
    if counting and sites and "processes" in sites[0]:  # an earlier merge: its counts
        extra = merged.extra
        for at, row in zip(remap, sites):
            extra[at] += row.get("processes", 1) - 1
    return remap


class _Counts:
    """Each merged site's (or node's) count tuples, and what its processes count adds to
    one per tuple (an earlier merge's row stands for several processes)."""

    __slots__ = ("buckets", "extra")

    def __init__(self) -> None:
        self.buckets: list[list[tuple[int, ...]]] = []
        self.extra: list[int] = []

    def totals(self, at: int) -> tuple[int, int, int, int, int, int]:
        return _totals(self.buckets[at], self.extra[at])


def _totals(bucket: list[tuple[int, ...]], extra: int) -> tuple[int, int, int, int, int, int]:
    """[calls, total_ns, self_ns, max_ns, raised, processes] of a bucket of count tuples."""
    if len(bucket) == 1:
        calls, total, self_ns, max_ns, raised = bucket[0]
        return calls, total, self_ns, max_ns, raised, 1 + extra
    columns: list[tuple[int, ...]] = list(zip(*bucket))
    calls_, total_, self_, max_, raised_ = columns
    return sum(calls_), sum(total_), sum(self_), max(max_), sum(raised_), len(bucket) + extra


class _Tree:
    """Merged call trees: node ids by (parent id, merged site index), each node's count
    tuples (summed at the end) and children in the order first met. A root's tree hangs
    from a parent id of its own (``root_id``). Walked with a stack, not recursion: the
    Python work per node is one dictionary lookup and one append."""

    __slots__ = ("index", "site", "buckets", "extra", "kids")

    def __init__(self) -> None:
        self.index: dict[tuple[int, int], int] = {}
        self.site: list[int] = []  # merged site index of each node (-1: a root)
        self.buckets: list[list[tuple[int, ...]]] = []
        self.extra: list[int] = []  # processes beyond one per tuple (earlier merges)
        self.kids: list[list[int]] = []

    def root_id(self) -> int:
        self.site.append(-1)
        self.buckets.append([])
        self.extra.append(0)
        self.kids.append([])
        return len(self.kids) - 1

    def add(self, parent: int, nodes: Any, remap: list[int], procs: bool) -> None:
        index, site, buckets, extra, kids = (
            self.index, self.site, self.buckets, self.extra, self.kids
        )  # fmt: skip
        get = index.get
        stack = [(parent, nodes)]
        pop, push = stack.pop, stack.append
        while stack:
            parent, nodes = pop()
            for node in nodes:
                key = (parent, remap[node["site"]])
                at = get(key)
                if at is None:
                    at = index[key] = len(buckets)
                    site.append(key[1])
                    buckets.append([])
                    extra.append(0)
                    kids.append([])
                    kids[parent].append(at)
                try:
                    buckets[at].append(_node_counts(node))
                except KeyError:  # a node that lacks some counts (an older writer): 0
                    buckets[at].append(tuple(node.get(f, 0) for f in _COUNT_FIELDS))
                if procs:
                    extra[at] += node.get("processes", 1) - 1
                children = node.get("children")
                if children:
                    push((at, children))

    def docs(self, parent: int, new_index: list[int], counting: bool) -> list[dict[str, Any]]:
        """The merged children of ``parent`` as document nodes."""
        out = []
        for at in self.kids[parent]:
            calls, total, self_ns, max_ns, raised, processes = _totals(
                self.buckets[at], self.extra[at]
            )
            node: dict[str, Any] = {
                "site": new_index[self.site[at]],
                "calls": calls,
                "total_ns": total,
                "self_ns": self_ns,
                "max_ns": max_ns,
                "raised": raised,
            }
            if counting:
                node["processes"] = processes
            node["children"] = self.docs(at, new_index, counting) if self.kids[at] else []
            out.append(node)
        return out


def _add_files(files: dict[str, Any], more: dict[str, Any]) -> None:
    for path, info in more.items():
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
                    stacklevel=3,
                )


def _site_row(row: dict[str, Any], a: tuple[int, ...], counting: bool) -> dict[str, Any]:
    calls, total = a[0], a[1]
    out = {
        **row,
        "calls": calls,
        "total_ns": total,
        "self_ns": a[2],
        "mean_ns": round(total / calls, 1) if calls else 0.0,
        "max_ns": a[3],
        "raised": a[4],
    }
    if counting:
        out["processes"] = a[5]
    else:
        out.pop("processes", None)
    return out


def _root_doc(root: _Root, tree: _Tree, new_index: list[int], counting: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": root.kind,
        "name": root.name,
        "thread_id": root.thread_id,
        "tasks": root.tasks,
        "total_ns": root.total_ns,
    }
    if counting:
        out["processes"] = root.processes
    out.update(root.extra)
    out["children"] = tree.docs(root.node, new_index, counting)
    return out


def fold(doc: Document, kind: str, name: str, total_ns: int | None = None) -> Document:
    """The document with all its roots made one root (``kind``, ``name``): their trees
    merged node by node, ``total_ns`` given (the root's wall time) or their sum. A timeline
    keeps the events of the root that recorded the most of them (one thread's well-nested
    events; events of other threads would interleave), the others count as dropped. (The
    pytest plugin makes each test's profile one root named by the test.)"""
    roots = doc.get("roots", [])
    tree = _Tree()
    top = tree.root_id()
    identity = list(range(len(doc.get("sites", []))))
    for root in roots:
        tree.add(top, root.get("children", ()), identity, False)
    root = {
        "kind": kind,
        "name": name,
        "thread_id": roots[0].get("thread_id", 0) if roots else 0,
        "total_ns": total_ns if total_ns is not None else sum(r.get("total_ns", 0) for r in roots),
        "children": tree.docs(top, identity, False),
    }
    out = {**doc, "roots": [root]}
    timeline = doc.get("timeline")
    if timeline is not None:
        events = timeline.get("events", [])
        counts: dict[int, int] = {}
        for event in events:
            counts[event["root"]] = counts.get(event["root"], 0) + 1
        kept_root = max(counts, key=counts.__getitem__) if counts else None
        kept = [{**e, "root": 0} for e in events if e["root"] == kept_root]
        out["timeline"] = {
            "dropped": timeline.get("dropped", 0) + len(events) - len(kept),
            "events": kept,
        }
    return out
