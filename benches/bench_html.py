"""Size and opening time of the HTML report for a big profile.

    python benches/bench_html.py                      # a synthetic 10,000-node document
    python benches/bench_html.py --nodes 50000
    python benches/bench_html.py --report run.json    # a saved JSON report (recompyle view)

The synthetic document takes its sites from real files (every call in a few dozen stdlib
modules, positioned by ``ast``, with their source in ``files``) and hangs a random tree of
``--nodes`` nodes over them in three threads, so the page carries what a real run's does:
source text, long callee texts, deep and wide trees. It prints the page's size, the time to
render it in Python, and in headless Chromium (needs ``chromium``, ``chromedriver`` and
selenium) the first contentful paint and the end of the page's own drawing, best of
``--repeat`` loads.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from recompyle.export import html  # noqa: E402
from recompyle.sources import check_files, file_entries  # noqa: E402

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


def open_times(page: Path, repeat: int) -> tuple[float, float] | str:
    from browser import chromium_paths

    found = chromium_paths()
    if isinstance(found, str):
        return found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)
    best_paint = best_drawn = float("inf")
    for _ in range(repeat):
        driver = webdriver.Chrome(service=Service(found[1]), options=options)
        try:
            driver.get(page.as_uri())
            deadline = time.monotonic() + 30
            while True:  # the paint entry is queued after the load event
                got = driver.execute_script(
                    "const p = performance.getEntriesByName('first-contentful-paint'),"
                    " r = performance.getEntriesByName('recompyle-rendered');"
                    " return p.length && r.length ? [p[0].startTime, r[0].startTime] : null"
                )
                if got or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if not got:
                return "the page did not paint within 30 s"
            paint, drawn = got
        finally:
            driver.quit()
        best_paint, best_drawn = min(best_paint, paint), min(best_drawn, drawn)
    return best_paint, best_drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--report", help="a saved JSON report instead of a synthetic one")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="write the page here")
    args = parser.parse_args()
    if args.report:
        doc = json.loads(Path(args.report).read_text(encoding="utf-8"))
        checks = check_files(doc)
    else:
        doc = synthetic(args.nodes)
        checks = None
    start = time.perf_counter()
    page = html.render(doc, file_status=checks)
    render_s = time.perf_counter() - start
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "profile.html"
    out.write_text(page, encoding="utf-8")
    size = out.stat().st_size
    files = doc.get("files") or {}
    print(
        f"{count_nodes(doc)} nodes, {len(doc['sites'])} sites, {len(files)} files "
        f"({sum(len(f.get('source') or '') for f in files.values()) / 1e6:.2f} MB of source)"
    )
    print(f"page: {size / 1e6:.2f} MB, rendered in {render_s * 1000:.0f} ms (Python)")
    times = open_times(out, args.repeat)
    if isinstance(times, str):
        print(f"browser: skipped ({times})")
    else:
        print(
            f"headless Chromium, best of {args.repeat}: first contentful paint {times[0]:.0f} ms,"
            f" page drawn at {times[1]:.0f} ms"
        )


if __name__ == "__main__":
    main()
