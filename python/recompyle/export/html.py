"""The profile document as one self-contained HTML page: a flame graph (icicle) of each
thread's and task's call-site tree, a sortable table of the call sites, and the source of each
profiled file with every call site marked at its exact columns.

Everything the page needs is inside the file (the script and style next to this module,
``html_report.js`` and ``html_report.css``, are inlined), so it opens from ``file://`` with no
network. The program's data (file names, callee texts, source) is embedded as JSON in a
``<script type="application/json">`` element with ``<``, ``>``, ``&`` and every non-ASCII
character escaped, so no text from the program can close the element or start markup; the
script builds the page with ``textContent`` only, never by parsing program text as HTML.

The document is compacted on the way in (the page is meant for big runs: a 10,000-node
profile stays a few hundred kB): sites become rows of a table with named columns, and each
root's tree a flat pre-order list of integers (site, calls, total, self, max, raised, number
of children) instead of nested objects.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recompyle.export._document import display_path
from recompyle.sources import FileCheck

__all__ = ["render"]

_HERE = Path(__file__).parent

# Columns of a site row in the page's data, in order (the page reads them by these names).
SITE_FIELDS = (
    "file",
    "line",
    "col",
    "end_line",
    "end_col",
    "callee",
    "caller",
    "module",
    "calls",
    "total_ns",
    "self_ns",
    "max_ns",
    "raised",
    "untimed",
)
# Integers per node in a root's flat tree.
NODE_FIELDS = ("site", "calls", "total_ns", "self_ns", "max_ns", "raised", "untimed", "children")

_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def render(doc: Mapping[str, Any], *, file_status: Mapping[str, FileCheck] | None = None) -> str:
    """The page for profile document ``doc`` (version 1 or 2). ``file_status`` (from
    ``recompyle.sources.check_files``) says per file whether it changed or went missing since
    the report was written, and gives the source to show when the document has none;
    without it the document's ``files`` section is shown as it is.

    A document that does not have the contract's shape raises ``ValueError`` naming what is
    wrong (never a half-drawn page)."""
    data = _page_data(doc, file_status or {})
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    payload = payload.translate(_SAFE)
    title = f"recompyle: {data['meta']['program']}"
    style = (_HERE / "html_report.css").read_text(encoding="utf-8")
    script = (_HERE / "html_report.js").read_text(encoding="utf-8")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape_html(title)}</title>\n<style>\n{style}</style>\n</head>\n<body>\n"
        '<div id="app"><noscript>This report needs JavaScript.</noscript></div>\n'
        f'<script type="application/json" id="recompyle-data">{payload}</script>\n'
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )


def _escape_html(text: str) -> str:
    """Text for an element's content (the title): markup characters and controls escaped."""
    text = "".join(ch if ch >= " " or ch == "\t" else " " for ch in text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, not {type(value).__name__}")
    return int(value)


def _page_data(doc: Mapping[str, Any], file_status: Mapping[str, FileCheck]) -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        raise ValueError("the report is not a JSON object")
    sites = doc.get("sites")
    if not isinstance(sites, list):
        raise ValueError("the report has no 'sites' list: not a recompyle profile")
    files_section = doc.get("files")
    recorded: Mapping[str, Any] = files_section if isinstance(files_section, Mapping) else {}
    file_index: dict[str, int] = {}
    rows = []
    for i, site in enumerate(sites):
        if not isinstance(site, Mapping):
            raise ValueError(f"sites[{i}] is not an object")
        try:
            path = str(site["file"])
            row: list[Any] = [file_index.setdefault(path, len(file_index))]
            for key in ("line", "col", "end_line", "end_col"):
                row.append(_int(site[key], f"sites[{i}].{key}"))
            row += [str(site["callee"]), str(site.get("caller", "")), str(site.get("module", ""))]
            for key in ("calls", "total_ns"):
                row.append(_int(site[key], f"sites[{i}].{key}"))
            own = site.get("self_ns")
            row.append(None if own is None else _int(own, f"sites[{i}].self_ns"))
            for key in ("max_ns", "raised", "untimed"):
                row.append(_int(site.get(key, 0), f"sites[{i}].{key}"))
        except KeyError as exc:
            raise ValueError(f"sites[{i}] has no {exc.args[0]!r}") from None
        rows.append(row)
    for path in recorded:
        file_index.setdefault(str(path), len(file_index))
    files = []
    for path in file_index:
        found = recorded.get(path)
        entry: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        check = file_status.get(path)
        source = entry.get("source") if isinstance(entry.get("source"), str) else None
        status = "recorded" if entry else "absent"
        note = ""
        if check is not None:
            status, note = check.status, check.note
            if source is None:
                source = check.source
        files.append(
            {"path": path, "display": display_path(path), "source": source, "status": status,
             "note": note}
        )  # fmt: skip
    roots = [_flat_root(r, i, len(rows)) for i, r in enumerate(_list(doc.get("roots"), "roots"))]
    argv = [str(a) for a in _list(doc.get("argv"), "argv")]
    timeline = doc.get("timeline") if isinstance(doc.get("timeline"), Mapping) else None
    wall = doc.get("wall_ns")
    meta = {
        "program": os.path.basename(argv[0]) if argv else "python",
        "argv": shlex.join(argv),
        "python": str(doc.get("python", "?")),
        "pid": doc.get("pid") if isinstance(doc.get("pid"), int) else None,
        "version": doc.get("version"),
        "wall_ns": None if wall is None else _int(wall, "wall_ns"),
        "dropped": _int(timeline.get("dropped", 0), "timeline.dropped") if timeline else None,
    }
    return {
        "meta": meta,
        "site_fields": SITE_FIELDS,
        "node_fields": NODE_FIELDS,
        "files": files,
        "sites": rows,
        "roots": roots,
    }


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"'{what}' must be a list, not {type(value).__name__}")
    return value


def _flat_root(root: Any, index: int, n_sites: int) -> dict[str, Any]:
    """A root with its tree as one pre-order list of integers, walked without recursion (a
    deep tree must not hit the interpreter's recursion limit)."""
    if not isinstance(root, Mapping):
        raise ValueError(f"roots[{index}] is not an object")
    flat: list[int] = []
    stack = list(reversed(_list(root.get("children"), f"roots[{index}].children")))
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping):
            raise ValueError(f"a node under roots[{index}] is not an object")
        site = node.get("site")
        if isinstance(site, bool) or not isinstance(site, int) or not 0 <= site < n_sites:
            raise ValueError(f"a node under roots[{index}] names site {site!r}, not in 'sites'")
        children = _list(node.get("children"), "children")
        try:
            flat += (
                site,
                *(_int(node[key], f"node.{key}") for key in ("calls", "total_ns", "self_ns")),
                *(_int(node.get(key, 0), f"node.{key}") for key in ("max_ns", "raised", "untimed")),
                len(children),
            )
        except KeyError as exc:
            raise ValueError(f"a node under roots[{index}] has no {exc.args[0]!r}") from None
        stack.extend(reversed(children))
    return {
        "kind": str(root.get("kind", "thread")),
        "name": str(root.get("name", "")),
        "thread_id": root.get("thread_id") if isinstance(root.get("thread_id"), int) else None,
        "total_ns": _int(root.get("total_ns", 0), f"roots[{index}].total_ns"),
        "nodes": flat,
    }
