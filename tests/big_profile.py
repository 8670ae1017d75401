"""A big, realistic profile document for the HTML report's size and speed: sites taken from
real files (every call in a few dozen stdlib modules, positioned by ``ast``, their source in
``files``) under a random tree of a chosen number of nodes in three threads, so the page carries
what a real run's does: source text, long callee texts, deep and wide trees."""

from __future__ import annotations

import ast
import random
import sys
import sysconfig
from pathlib import Path
from typing import Any

from recompyle.sources import file_entries

STDLIB = [
    "argparse", "ast", "calendar", "configparser", "csv", "dataclasses", "difflib", "email/message",
    "enum", "fractions", "ftplib", "functools", "gettext", "inspect", "ipaddress", "json/decoder",
    "logging/__init__", "mailbox", "pathlib", "pickle", "pprint", "random", "shutil", "smtplib",
    "statistics", "string", "tarfile", "textwrap", "threading", "tokenize", "typing", "zipfile",
]  # fmt: skip


def synthetic(nodes: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sites: list[dict[str, Any]] = []
    paths = []
    for name in STDLIB:
        path = stdlib / f"{name}.py"
        if not path.is_file():
            continue
        paths.append(str(path))
        text = path.read_bytes()
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, ast.Call):
                sites.append(
                    {"file": str(path), "line": n.lineno, "col": n.col_offset,
                     "end_line": n.end_lineno, "end_col": n.end_col_offset,
                     "callee": ast.unparse(n.func), "caller": "f", "module": name.replace("/", "."),
                     "calls": 0, "total_ns": 0, "self_ns": 0, "max_ns": 0, "raised": 0}
                )  # fmt: skip
    rng.shuffle(sites)
    sites = sites[: max(1, nodes // 4)]
    made = 0

    def tree(depth: int, budget: int) -> list[dict[str, Any]]:
        nonlocal made
        out = []
        while budget > 0 and made < nodes:
            made += 1
            budget -= 1
            share = rng.randint(0, budget) if depth < 40 else 0
            children = tree(depth + 1, share)
            budget -= share
            calls = rng.randint(1, 500)
            below = sum(c["total_ns"] for c in children)
            own = rng.randint(100, 5_000_000)
            site = rng.randrange(len(sites))
            out.append({"site": site, "calls": calls, "total_ns": below + own, "self_ns": own,
                        "max_ns": (below + own) // calls + 1, "raised": rng.random() < 0.05,
                        "children": children})  # fmt: skip
        return out

    roots = []
    for i, name in enumerate(("MainThread", "Thread-1 (worker)", "Thread-2 (worker)")):
        children = tree(0, nodes // 3 if i < 2 else nodes)
        total = sum(c["total_ns"] for c in children)
        roots.append({"kind": "thread", "name": name, "thread_id": i + 1, "total_ns": total,
                      "children": children})  # fmt: skip

    def add(node: dict[str, Any]) -> None:
        s = sites[node["site"]]
        s["calls"] += node["calls"]
        s["total_ns"] += node["total_ns"]
        s["self_ns"] += node["self_ns"]
        s["max_ns"] = max(s["max_ns"], node["max_ns"])
        s["raised"] += int(node["raised"])
        node["raised"] = int(node["raised"])
        for c in node["children"]:
            add(c)

    for r in roots:
        for c in r["children"]:
            add(c)
    for s in sites:
        s["mean_ns"] = round(s["total_ns"] / s["calls"], 1) if s["calls"] else 0.0
    return {
        "version": 2, "python": sys.version.split()[0], "argv": ["synthetic.py"], "pid": 1,
        "wall_ns": max(r["total_ns"] for r in roots), "sites": sites, "roots": roots,
        "timeline": None, "files": file_entries(paths),
    }  # fmt: skip


def count_nodes(doc: dict[str, Any]) -> int:
    stack = [c for r in doc.get("roots") or () for c in r["children"]]
    n = 0
    while stack:
        node = stack.pop()
        n += 1
        stack.extend(node["children"])
    return n
