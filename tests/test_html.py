"""The HTML report (``--format html``, ``recompyle view``): a self-contained page whose
program text cannot inject markup, the ``files`` section, and the page in a real browser
(headless Chromium): flame graph zoom, search, table sort and filter, source spans at the
sites' exact columns, no console errors, no network."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from browser import chromium, console_errors
from conftest import run_python
from recompyle.export import format_for_output, get_format, html
from recompyle.sources import check_files, file_entries
from synthetic_profile import document

DATA_RE = re.compile(r'<script type="application/json" id="recompyle-data">(.*?)</script>', re.S)


def page_data(page: str) -> dict[str, Any]:
    match = DATA_RE.search(page)
    assert match, "no data element"
    return json.loads(match.group(1))


def ast_document(paths: list[Path]) -> dict[str, Any]:
    """A version-2 document whose sites are every call in ``paths`` as ``ast`` positions
    them (columns are UTF-8 byte offsets), nested by containment into one thread's tree;
    each node costs 1 us of its own, so an outer call's total is its calls' plus 1 us."""
    raw: list[dict[str, Any]] = []
    for path in paths:
        text = path.read_bytes()
        tree = ast.parse(text)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        calls.sort(key=lambda n: (n.lineno, n.col_offset, -n.end_lineno, -n.end_col_offset))
        for n in calls:
            raw.append(
                {"file": str(path), "line": n.lineno, "col": n.col_offset,
                 "end_line": n.end_lineno, "end_col": n.end_col_offset,
                 "callee": ast.get_source_segment(text.decode("utf-8", "replace"), n.func)
                 or "?", "caller": "<module>", "module": path.stem, "children": []}
            )  # fmt: skip
    # parent = the innermost earlier call whose span contains this one
    tops: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for s in raw:
        key = (s["file"], s["line"], s["col"])
        while stack and not (
            stack[-1]["file"] == s["file"]
            and (stack[-1]["line"], stack[-1]["col"]) <= key[1:]
            and (s["end_line"], s["end_col"]) <= (stack[-1]["end_line"], stack[-1]["end_col"])
        ):
            stack.pop()
        (stack[-1]["children"] if stack else tops).append(s)
        stack.append(s)

    def total(s: dict[str, Any]) -> int:
        s["total_ns"] = 1000 + sum(total(c) for c in s["children"])
        return s["total_ns"]

    for s in tops:
        total(s)
    order = sorted(range(len(raw)), key=lambda i: (-raw[i]["total_ns"], i))
    index = {id(raw[old]): new for new, old in enumerate(order)}

    def node(s: dict[str, Any]) -> dict[str, Any]:
        children = [node(c) for c in s["children"]]
        return {"site": index[id(s)], "calls": 1, "total_ns": s["total_ns"], "self_ns": 1000,
                "max_ns": s["total_ns"], "raised": 0, "children": children}  # fmt: skip

    sites = []
    for old in order:
        s = {k: v for k, v in raw[old].items() if k != "children"}
        total_ns = s["total_ns"]
        s.update(calls=1, self_ns=1000, mean_ns=float(total_ns), max_ns=total_ns, raised=0)
        sites.append(s)
    grand = sum(s["total_ns"] for s in tops)
    return {
        "version": 2, "python": "3.11.7", "argv": [str(paths[0]), "--x"], "pid": 1,
        "wall_ns": grand + 5000, "sites": sites,
        "roots": [{"kind": "thread", "name": "MainThread", "thread_id": 1, "total_ns": grand,
                   "children": [node(s) for s in tops]}],
        "timeline": None, "files": file_entries(str(p) for p in paths),
    }  # fmt: skip


HOSTILE = (
    '# </script><script>window.PWNED = 1</script> <!-- <img src=x onerror="window.PWNED=2">\n'
    "import os\n"
    "s = '\\u2028 \u2028 \u2029 \x1b[31mred\x1b[0m \"quoted\" &amp; &lt;'\n"
    "t = str('</script><b>x</b>'); u = len(\"h\u00e9llo \u20ac \U0001f600\"); v = abs(-1)\n"
    "w = max(len('\u00fc\u00fc'), min(1, 2), len(\"\U0001f600\"))  # \u00e9\n"
    "x = str(\n    len('\u20ac'),\n)\n"
)


# ---- the page as text ------------------------------------------------------------------


def test_html_is_a_registered_format():
    fmt = get_format("html")
    assert not fmt.binary and not fmt.needs_timeline
    assert format_for_output("out/profile.html") is fmt
    assert format_for_output("PROFILE.HTM") is fmt


def test_page_is_self_contained():
    doc = document()
    doc["sites"][0]["untimed"] = 3  # calls counted but not timed (nested too deep)
    doc["roots"][0]["children"][0]["untimed"] = 2
    page = html.render(doc)
    static = DATA_RE.sub("", page)
    for needle in ("http:", "https:", "<link", "<img", "@import", "url(", " src=", "<iframe"):
        assert needle not in static.lower(), needle
    assert page.count("<script") == 2
    data = page_data(page)
    assert len(data["sites"]) == len(doc["sites"])
    assert data["sites"][0][data["site_fields"].index("untimed")] == 3
    assert data["roots"][0]["nodes"][data["node_fields"].index("untimed")] == 2


def test_program_text_cannot_close_the_data_element(tmp_path):
    evil = tmp_path / "<" / "script><script>alert(1)<" / "script><!--\u2028.py"
    evil.parent.mkdir(parents=True)
    assert "/</script><script>alert(1)</script><!--" in str(evil)
    evil.write_text(HOSTILE, encoding="utf-8")
    doc = ast_document([evil])
    page = html.render(doc)
    # Our own two script elements close; nothing from the program opens or closes one.
    assert page.count("</script") == 2 and page.count("<script") == 2
    assert "<!--" not in page
    embedded = DATA_RE.search(page).group(1)
    assert embedded.isascii() and not re.search("[<>&]", embedded)
    data = page_data(page)
    assert data["files"][0]["path"] == str(evil)
    assert data["files"][0]["source"] == HOSTILE
    assert {row[5] for row in data["sites"]} >= {"str", "len", "max", "min", "abs"}


def test_rejects_what_is_not_a_profile():
    for bad, message in (
        ([], "not a JSON object"),
        ({"version": 2}, "no 'sites'"),
        ({"sites": [{"file": "a"}]}, "has no 'line'"),
        ({"sites": [], "roots": [{"children": [{"site": 3}]}]}, "site 3"),
        ({"sites": [], "roots": "x"}, "'roots' must be a list"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            html.render(bad)


def test_deep_tree_renders_without_recursion():
    doc = document()
    node = None
    for _ in range(5000):
        node = {"site": 0, "calls": 1, "total_ns": 10, "self_ns": 1, "max_ns": 10, "raised": 0,
                "children": [node] if node else []}  # fmt: skip
    doc["roots"][0]["children"] = [node]
    data = page_data(html.render(doc))
    assert len(data["roots"][0]["nodes"]) == 5000 * len(data["node_fields"])


# ---- the files section -------------------------------------------------------------------


def test_file_entries_decode_as_python_does(tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9'\r\ny = 1\r")
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfprint('\xc3\xa9')\n")
    entries = file_entries([str(latin), str(bom), str(tmp_path / "gone.py"), "<string>"])
    assert set(entries) == {str(latin), str(bom)}
    assert entries[str(latin)]["source"] == "# -*- coding: latin-1 -*-\nx = '\u00e9'\ny = 1\n"
    assert entries[str(latin)]["sha256"] == hashlib.sha256(latin.read_bytes()).hexdigest()
    assert entries[str(bom)]["source"] == "print('\u00e9')\n"


def test_check_files(tmp_path):
    same, changed, gone, unrecorded = (tmp_path / f"{n}.py" for n in "abcd")
    for p in (same, changed, gone, unrecorded):
        p.write_text("f()\n")
    doc = ast_document([same, changed, gone])
    doc["sites"].append(dict(doc["sites"][0], file=str(unrecorded)))
    doc["sites"].append(dict(doc["sites"][0], file="<stdin>"))
    changed.write_text("g()\n")
    gone.unlink()
    checks = check_files(doc)
    status = {Path(p).name: c.status for p, c in checks.items()}
    assert status == {"a.py": "same", "b.py": "changed", "c.py": "missing", "d.py": "unrecorded",
                      "<stdin>": "unavailable"}  # fmt: skip
    assert checks[str(unrecorded)].source == "f()\n"
    assert checks[str(same)].source is None  # the report's own copy is used


# ---- recompyle view ------------------------------------------------------------------------


def test_view_says_what_changed(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("print(len('abc'))\n")
    other = tmp_path / "other.py"
    other.write_text("abs(1)\n")
    report = tmp_path / "report.json"
    report.write_text(json.dumps(ast_document([prog, other])))
    prog.write_text("print(len('abcd'))\n")
    other.unlink()
    r = run_python("-m", "recompyle", "view", str(report), "-o", str(tmp_path / "p.html"))
    assert r.returncode == 0, r.stderr
    assert f"{prog}: changed since the report was written" in r.stderr
    assert f"{other}: missing since the report was written" in r.stderr
    data = page_data((tmp_path / "p.html").read_text(encoding="utf-8"))
    by_name = {Path(f["path"]).name: f for f in data["files"]}
    assert by_name["prog.py"]["status"] == "changed"
    assert by_name["prog.py"]["source"] == "print(len('abc'))\n"  # the recorded text
    assert by_name["other.py"]["status"] == "missing"
    # default output name: the report's, .html for .json
    r = run_python("-m", "recompyle", "view", str(report))
    assert r.returncode == 0 and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("{not json", [], "cannot read"),
        ('{"version": 2}', [], "no 'sites' list"),
        ("[1]", [], "not a JSON object"),
        (None, [], "cannot read"),
        ("{}", ["-o"], "-o needs a value"),
        ("{}", ["--bogus"], "unexpected argument '--bogus'"),
        ("{}", ["-o", "/nonexistent/dir/p.html"], "cannot write"),
    ],
)
def test_view_bad_input(tmp_path, content, args, message):
    report = tmp_path / "r.json"
    if content is not None:
        report.write_text(content if content != "{}" else json.dumps(document()))
    r = run_python("-m", "recompyle", "view", str(report), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


# ---- in a real browser -----------------------------------------------------------------


def open_page(driver: Any, path: Path) -> None:
    driver.get(path.as_uri())
    deadline = time.monotonic() + 10
    while driver.execute_script("return document.body.getAttribute('data-ready')") != "1":
        assert time.monotonic() < deadline, "the page did not finish drawing"
        time.sleep(0.05)


def expected_spans(source: str, sites: list[dict[str, Any]], path: str) -> dict[int, list]:
    """What the source view must mark for each site of ``path``: per line of its span, the
    text between its UTF-8 byte columns (continuation lines from their first non-blank),
    control characters as their Unicode pictures."""
    lines = source.split("\n")
    out: dict[int, list[tuple[str, str]]] = {}
    for i, site in enumerate(sites):
        if site["file"] != path:
            continue
        for ln in range(site["line"], site["end_line"] + 1):
            line = lines[ln - 1].encode()
            start = site["col"] if ln == site["line"] else len(line) - len(line.lstrip())
            end = site["end_col"] if ln == site["end_line"] else len(line)
            text = line[start:end].decode()
            text = "".join(chr(0x2400 + ord(c)) if c < " " and c != "\t" else c for c in text)
            if text:
                out.setdefault(i, []).append((text, f"L{ln}"))
    return out


def page_spans(driver: Any) -> dict[int, list]:
    """The marked spans of the source view: site -> [(text, line element id)]."""
    got: dict[int, list[tuple[str, str]]] = {}
    for site, text, line_id in driver.execute_script(
        "return Array.from(document.querySelectorAll('#src .site')).map("
        "s => [+s.dataset.site, s.textContent, s.closest('.ln').id])"
    ):
        got.setdefault(site, []).append((text, line_id))
    return got


def show_file(driver: Any, path: str) -> None:
    """Pick ``path`` in the source view's file menu, as a user would."""
    from selenium.webdriver.support.ui import Select

    data = driver.execute_script(
        "return JSON.parse(document.getElementById('recompyle-data').textContent).files"
    )
    index = next(i for i, f in enumerate(data) if f["path"] == path)
    Select(driver.find_element("id", "source-file")).select_by_value(str(index))


def test_browser_hostile_source_and_byte_columns(tmp_path):
    """Every span the page marks holds exactly the text of its call (as ``ast`` cuts it out
    of the source), on lines with 2-, 3- and 4-byte characters; nothing the program wrote
    runs or becomes markup."""
    evil = tmp_path / "<" / "script><img src=x onerror=window.PWNED=3>.py"
    evil.parent.mkdir()
    evil.write_text(HOSTILE, encoding="utf-8")
    doc = ast_document([evil])
    page = tmp_path / "p.html"
    page.write_text(html.render(doc), encoding="utf-8")
    with chromium(offline=True) as driver:
        open_page(driver, page)
        assert driver.execute_script("return window.PWNED") is None
        assert driver.execute_script("return document.querySelectorAll('img, iframe').length") == 0
        assert console_errors(driver) == []
        assert page_spans(driver) == expected_spans(HOSTILE, doc["sites"], str(evil))
        # two sites on one line stay apart, each with its own chip in the margin
        chips = driver.execute_script(
            "return Array.from(document.querySelectorAll('#L4 .chip')).map(c => c.textContent)"
        )
        assert [c.split(" ")[0] for c in chips] == ["str", "len", "abs"]
        # the file name is shown as text
        assert str(evil.name) in driver.find_element("id", "source-file").text


def frame_width_of_view(driver: Any) -> str:
    """The width a frame has when it spans the whole flame graph."""
    return driver.execute_script(
        "const f = document.getElementById('flame'); return f.clientWidth + 'px'"
    )


def flame_nodes(driver: Any) -> list[dict[str, Any]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#flame .fr')).map(f => ({"
        "node: +f.dataset.node, text: f.textContent, left: f.style.left, width: f.style.width,"
        "top: f.style.top, match: f.classList.contains('match')}))"
    )


def test_browser_flame_table_search_source(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(
        "def parse(t):\n    return t.split(',')\n\n"
        "def load():\n    return [parse(x) for x in ['a,b', 'c']]\n\n"
        "load(); print(len(parse('x,y')), abs(-3))\n",
        encoding="utf-8",
    )
    doc = ast_document([prog])
    doc["sites"][0]["calls"] = 7  # one site with the most calls, for the sort
    page = tmp_path / "p.html"
    page.write_text(html.render(doc), encoding="utf-8")
    with chromium(offline=True) as driver:
        open_page(driver, page)
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        header = driver.find_element("tag name", "header").text
        assert "prog.py --x" in header and "3.11.7" in header
        n_calls = sum(s["calls"] for s in doc["sites"])
        assert driver.find_element("id", "meta-calls").text == str(n_calls)
        # flame graph: frames for every node (all, the thread, each call), labels = callees
        frames = flame_nodes(driver)
        labels = sorted(f["text"] for f in frames)
        assert labels == sorted(
            ["all threads and tasks", "MainThread"] + [s["callee"] for s in doc["sites"]]
        )
        # click a frame: it becomes the full-width frame of the view and its source is shown
        target = next(f for f in frames if f["text"] == "len")
        assert target["width"] != "100%"
        driver.find_element("css selector", f'#flame .fr[data-node="{target["node"]}"]').click()
        zoomed = {f["node"]: f for f in flame_nodes(driver)}
        assert zoomed[target["node"]]["width"] == "100%"
        assert {f["text"] for f in zoomed.values()} == {
            "all threads and tasks",
            "MainThread",
            "print",
            "len",
            "parse",
        }
        selected = driver.execute_script(
            "return Array.from(document.querySelectorAll('#src .site.sel')).map(s => s.textContent)"
        )
        assert selected == ["len(parse('x,y'))"]
        # hover: the frame's numbers
        from selenium.webdriver import ActionChains

        frame = driver.find_element("css selector", f'#flame .fr[data-node="{target["node"]}"]')
        ActionChains(driver).move_to_element(frame).perform()
        tip = driver.find_element("id", "tip").text
        site = next(s for s in doc["sites"] if s["callee"] == "len")
        us = f"{site['total_ns'] / 1000:.3f} µs"
        for needle in (f"prog.py:{site['line']}:{site['col'] + 1}", "calls 1", f"total {us}",
                       "self 1.000 µs", f"mean {us}", f"max {us}", "raised 0"):  # fmt: skip
            assert needle in tip, (needle, tip)
        # an ancestor above the zoomed frame zooms back out
        driver.find_element("css selector", '#flame .fr.anc[data-node="1"]').click()
        thread = driver.find_element("css selector", '#flame .fr[data-node="1"]')
        assert "anc" not in thread.get_attribute("class").split()  # the view's top now
        assert thread.value_of_css_property("width") == frame_width_of_view(driver)
        driver.find_element("id", "reset-zoom").click()
        # search: exactly the frames whose callee holds the text are marked
        driver.find_element("id", "search").send_keys("PARSE")
        time.sleep(0.3)
        marked = sorted(f["text"] for f in flame_nodes(driver) if f["match"])
        assert marked == ["parse", "parse"]
        assert "2 matching frames" in driver.find_element("id", "search-info").text

        # table: sorted by total; a click on "calls" sorts by calls, again reverses
        def column(i: int) -> list[str]:
            return driver.execute_script(
                f"return Array.from(document.querySelectorAll('#sites tbody tr td:nth-child({i})'))"
                ".map(td => td.textContent)"
            )

        def calls() -> list[int]:
            return [int(c.replace(",", "")) for c in column(4)]

        totals = [s["total_ns"] for s in doc["sites"]]
        assert len(column(1)) == len(doc["sites"]) and sorted(totals, reverse=True) == totals
        driver.find_element("css selector", '#sites th[data-key="calls"]').click()
        assert calls() == sorted(calls(), reverse=True) and calls()[0] == 7
        th = driver.find_element("css selector", '#sites th[data-key="calls"]')
        assert th.get_attribute("aria-sort") == "descending"
        th.click()
        assert calls() == sorted(calls()) and calls()[-1] == 7
        driver.find_element("css selector", '#sites th[data-key="callee"]').click()
        assert column(1) == sorted(column(1))
        driver.find_element("id", "filter").send_keys("t.split")
        assert column(1) == ["t.split"]
        # source: pick the file; every site marked, coloured
        show_file(driver, str(prog))
        marked_text = driver.execute_script(
            "return Array.from(document.querySelectorAll('#L7 .site')).map(s => s.textContent)"
        )
        assert marked_text == ["load()", "print(len(parse('x,y')), abs(-3))",
                               "len(parse('x,y'))", "parse('x,y')", "abs(-3)"]  # fmt: skip
        # a table row opens its site
        driver.find_element("id", "filter").clear()
        driver.find_element("id", "filter").send_keys("abs")
        driver.find_element("css selector", "#sites tbody tr").click()
        assert driver.execute_script(
            "return Array.from(document.querySelectorAll('#src .site.sel')).map(s => s.textContent)"
        ) == ["abs(-3)"]
        assert console_errors(driver) == []
        paint = driver.execute_script(
            "return performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)"
        )
        assert len(paint) == 1 and paint[0] > 0


PROGRAMS = Path(__file__).parent / "programs"


@pytest.mark.parametrize("name", ["threads.py", "asyncio_gather.py", "src_unicode_idents.py"])
def test_browser_real_programs(tmp_path, name):
    """A real run (``run -o report.json``, then ``recompyle view``): every call site the
    profiler recorded is marked in the page at exactly its columns."""
    prog = tmp_path / name
    prog.write_bytes((PROGRAMS / name).read_bytes())
    report = tmp_path / "r.json"
    r = run_python("-m", "recompyle", "run", "-o", str(report), name, cwd=tmp_path)
    assert report.is_file(), r.stderr
    page = tmp_path / "p.html"
    r = run_python("-m", "recompyle", "view", str(report), "-o", str(page))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["files"][str(prog)]["source"] == prog.read_text(encoding="utf-8")
    with chromium(offline=True) as driver:
        open_page(driver, page)
        show_file(driver, str(prog))
        want = expected_spans(prog.read_text(encoding="utf-8"), doc["sites"], str(prog))
        assert want and page_spans(driver) == want
        rows = driver.execute_script("return document.querySelectorAll('#sites tbody tr').length")
        assert rows == min(500, len(doc["sites"]))
        if doc.get("roots"):
            names = driver.execute_script(
                "return Array.from(document.querySelectorAll('#flame .fr.root'))"
                ".map(f => f.textContent)"
            )
            everything = sum(r["total_ns"] for r in doc["roots"])
            wide = {
                r["name"] if r["kind"] == "thread" else f"{r['name']} ({r['kind']})"
                for r in doc["roots"]
                if r["total_ns"] > everything / 20
            }
            assert wide and wide <= set(names)  # the narrow ones are slivers without a label
        assert console_errors(driver) == []


needs_document = pytest.mark.skipif(
    not hasattr(__import__("recompyle.report").report, "build_document"),
    reason="recompyle.report.build_document (the call tree's profile document) is not here yet",
)


@needs_document
@pytest.mark.parametrize(
    "args, env",
    [
        (["--format", "html", "-o", "out.page"], {}),
        (["-o", "profile.html"], {}),
        ([], {"RECOMPYLE_FORMAT": "html", "RECOMPYLE_OUTPUT": "profile.html"}),
    ],
    ids=["format", "output-name", "environment"],
)
def test_run_writes_html(tmp_path, args, env):
    (tmp_path / "prog.py").write_text("def f(x):\n    return abs(x)\n\nprint(f(-2))\n")
    r = run_python("-m", "recompyle", "run", *args, "prog.py", cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout == "2\n", r.stderr
    out = tmp_path / ("out.page" if "--format" in args else "profile.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    data = page_data(page)
    assert {row[5] for row in data["sites"]} == {"f", "abs", "print"}
    assert data["files"][0]["source"] == (tmp_path / "prog.py").read_text()


def test_big_profile(tmp_path):
    """10,000 nodes over 2,500 sites with 32 real files' source: under 5 MB, and the page
    draws in the browser without errors, zoom included (its opening time is measured in
    benches/bench_html.py, not asserted here)."""
    from big_profile import count_nodes, synthetic

    doc = synthetic(10_000)
    assert count_nodes(doc) == 10_000
    page = tmp_path / "big.html"
    page.write_text(html.render(doc), encoding="utf-8")
    assert page.stat().st_size < 5_000_000
    with chromium() as driver:
        open_page(driver, page)
        frames = driver.execute_script("return document.querySelectorAll('#flame .fr').length")
        assert 100 < frames <= 10_000 + 4
        driver.find_element("css selector", '#flame .fr[data-node="1"]').click()  # MainThread
        main = driver.find_element("css selector", '#flame .fr[data-node="1"]')
        assert main.text == "MainThread" and main.value_of_css_property("left") == "0px"
        assert (
            driver.execute_script(
                "return document.querySelector('#flame .fr[data-node=\"1\"]').style.width"
            )
            == "100%"
        )
        driver.find_element("css selector", '#sites th[data-key="max"]').click()
        maxima = driver.execute_script(
            "return Array.from(document.querySelectorAll('#sites tbody tr'))"
            ".map(tr => +tr.dataset.site)"
        )
        want = sorted(range(len(doc["sites"])), key=lambda i: (-doc["sites"][i]["max_ns"], -i))
        assert maxima == want[:500]
        assert console_errors(driver) == []
