"""Size and opening time of the HTML report for a big profile.

    python benches/bench_html.py                      # a synthetic 10,000-node document
    python benches/bench_html.py --nodes 50000
    python benches/bench_html.py --report run.json    # a saved JSON report (recompyle view)

The synthetic document is ``tests/big_profile.py``'s: sites from real stdlib files, their
source, and a random tree of ``--nodes`` nodes in three threads. It prints the page's size,
the time to render it in Python, and in headless Chromium (needs ``chromium``,
``chromedriver`` and selenium) the first contentful paint and the end of the page's own
drawing, best of ``--repeat`` loads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import targets as T  # noqa: E402 -- benches/targets.py, this script's directory

from big_profile import count_nodes, synthetic  # noqa: E402
from recompyle.export import html  # noqa: E402
from recompyle.sources import check_files  # noqa: E402


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
    judged = not args.report and args.nodes == 10_000  # the targets are for this document
    if judged:
        print(f"  [{T.HTML_SIZE.verdict(size / 1e6)}] {T.HTML_SIZE.name}")
    times = open_times(out, args.repeat)
    if isinstance(times, str):
        print(f"browser: skipped ({times})")
    else:
        print(
            f"headless Chromium, best of {args.repeat}: first contentful paint {times[0]:.0f} ms,"
            f" page drawn at {times[1]:.0f} ms"
        )
        if judged:
            print(f"  [{T.HTML_FIRST_PAINT.verdict(times[0] / 1000)}] {T.HTML_FIRST_PAINT.name}")


if __name__ == "__main__":
    main()
