"""Profile documents put together: several into one, and all of a document's roots into one.

The pytest plugin needs both: each test's profile becomes one root of the session's
document, named by the test's node id (``fold``), and the documents of the xdist workers
and of every test become the session's (``merge``). The document is the version-2 JSON
object of ``recompyle.report`` (see ARCHITECTURE/README): ``sites`` that nodes and timeline
events point into by index, ``roots`` of call-site trees, an optional ``timeline`` and the
``files`` section.

Sites are the same site when file, position, callee and caller agree (site ids differ
between processes); their numbers add up, the longest call is the longest of all. Nodes
under one parent with the same site merge the same way, recursively, so a merged tree is
what one profile of all the work would have recorded.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

__all__ = ["fold", "merge", "site_key"]

Doc = Dict[str, Any]
Node = Dict[str, Any]

_SUMMED = ("calls", "total_ns", "self_ns", "raised")


def site_key(site: dict[str, Any]) -> tuple[Any, ...]:
    return (
        site.get("file"),
        site.get("line"),
        site.get("col"),
        site.get("end_line"),
        site.get("end_col"),
        site.get("callee"),
        site.get("caller"),
    )


def _add_numbers(into: dict[str, Any], other: dict[str, Any]) -> None:
    for field in _SUMMED:
        if field in other or field in into:
            into[field] = into.get(field, 0) + other.get(field, 0)
    into["max_ns"] = max(into.get("max_ns", 0), other.get("max_ns", 0))


def _merge_children(into: list[Node], nodes: list[Node], remap: list[int]) -> None:
    """Add ``nodes`` (site indices through ``remap``) to the siblings ``into``."""
    by_site = {node["site"]: node for node in into}
    for node in nodes:
        site = remap[node["site"]]
        same = by_site.get(site)
        if same is None:
            same = {
                "site": site,
                "calls": 0,
                "total_ns": 0,
                "self_ns": 0,
                "max_ns": 0,
                "raised": 0,
                "children": [],
            }
            by_site[site] = same
            into.append(same)
        _add_numbers(same, node)
        _merge_children(same["children"], node.get("children", []), remap)


class _Builder:
    """The merged document under construction: sites by key, roots in order."""

    def __init__(self) -> None:
        self.sites: list[dict[str, Any]] = []
        self.index: dict[tuple[Any, ...], int] = {}
        self.roots: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.dropped = 0
        self.has_timeline = False
        self.files: dict[str, Any] = {}

    def add_sites(self, sites: list[dict[str, Any]]) -> list[int]:
        remap = []
        for site in sites:
            key = site_key(site)
            at = self.index.get(key)
            if at is None:
                at = self.index[key] = len(self.sites)
                self.sites.append({**site})
            else:
                _add_numbers(self.sites[at], site)
            remap.append(at)
        return remap

    def add(self, doc: Doc, offset_ns: int = 0) -> None:
        remap = self.add_sites(doc.get("sites", []))
        first_root = len(self.roots)
        for root in doc.get("roots", []):
            children: list[Node] = []
            _merge_children(children, root.get("children", []), remap)
            self.roots.append({**root, "children": children})
        timeline = doc.get("timeline")
        if timeline is not None:
            self.has_timeline = True
            self.dropped += timeline.get("dropped", 0)
            for event in timeline.get("events", []):
                self.events.append(
                    {
                        **event,
                        "root": first_root + event["root"],
                        "site": remap[event["site"]],
                        "start_ns": event["start_ns"] + offset_ns,
                        "end_ns": event["end_ns"] + offset_ns,
                    }
                )
        for path, entry in doc.get("files", {}).items():
            self.files.setdefault(path, entry)

    def document(self, base: Doc) -> Doc:
        sites = self.sites
        for site in sites:
            calls = site.get("calls", 0)
            site["mean_ns"] = round(site.get("total_ns", 0) / calls, 1) if calls else 0.0
        order = sorted(
            range(len(sites)),
            key=lambda i: (-sites[i].get("total_ns", 0), sites[i].get("file", ""), i),
        )
        new_index = [0] * len(sites)
        for new, old in enumerate(order):
            new_index[old] = new
        for root in self.roots:
            _reindex(root["children"], new_index)
        events = [{**e, "site": new_index[e["site"]]} for e in self.events]
        out = {
            **base,
            "sites": [sites[i] for i in order],
            "roots": self.roots,
            "timeline": {"dropped": self.dropped, "events": events} if self.has_timeline else None,
        }
        if self.files or "files" in base:
            out["files"] = self.files
        return out


def _reindex(nodes: list[Node], new_index: list[int]) -> None:
    for node in nodes:
        node["site"] = new_index[node["site"]]
        _reindex(node["children"], new_index)


def merge(docs: list[Doc], offsets_ns: Optional[List[int]] = None) -> Doc:
    """One document of several: every root kept, in order; sites and files merged.
    ``offsets_ns`` moves each document's timeline onto the merged one's clock. ``wall_ns``
    is the sum (None if any is unknown); the first document's other header fields stay."""
    builder = _Builder()
    for i, doc in enumerate(docs):
        builder.add(doc, offsets_ns[i] if offsets_ns else 0)
    walls = [doc.get("wall_ns") for doc in docs]
    base = {**(docs[0] if docs else {"version": 2})}
    base["wall_ns"] = sum(walls) if walls and None not in walls else None
    return builder.document(base)


def fold(doc: Doc, kind: str, name: str, total_ns: Optional[int] = None) -> Doc:
    """The document with all its roots made one root (``kind``, ``name``): their trees
    merged node by node, ``total_ns`` given (the root's wall time) or their sum. A timeline
    keeps the events of the root that recorded the most of them (one thread's well-nested
    events; events of other threads would interleave), the others count as dropped."""
    roots = doc.get("roots", [])
    children: list[Node] = []
    identity = list(range(len(doc.get("sites", []))))
    for root in roots:
        _merge_children(children, root.get("children", []), identity)
    root = {
        "kind": kind,
        "name": name,
        "thread_id": roots[0].get("thread_id", 0) if roots else 0,
        "total_ns": total_ns if total_ns is not None else sum(r.get("total_ns", 0) for r in roots),
        "children": children,
    }
    out = {**doc, "roots": [root]}
    timeline = doc.get("timeline")
    if timeline is not None:
        out["timeline"] = _one_root_timeline(timeline)
    return out


def _one_root_timeline(timeline: dict[str, Any]) -> dict[str, Any]:
    events = timeline.get("events", [])
    counts: Dict[int, int] = {}
    for event in events:
        counts[event["root"]] = counts.get(event["root"], 0) + 1
    kept_root: Tuple[int, ...] = (max(counts, key=lambda r: counts[r]),) if counts else ()
    kept = [{**e, "root": 0} for e in events if e["root"] in kept_root]
    return {"dropped": timeline.get("dropped", 0) + len(events) - len(kept), "events": kept}
