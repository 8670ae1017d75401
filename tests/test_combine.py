"""``recompyle.combine``: merging profile parts of several processes or runs.

The documents here are written by hand to the version-2 report format, so that every sum,
max and count can be checked exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recompyle.combine import CombineError, combine, fold, new_part_id, read_part


def _site(line: int, callee: str, calls: int, total: int, mx: int, raised: int = 0) -> dict:
    return {
        "file": "/app/m.py",
        "line": line,
        "col": 4,
        "end_line": line,
        "end_col": 4 + len(callee) + 2,
        "callee": callee,
        "caller": "main",
        "module": "m",
        "calls": calls,
        "total_ns": total,
        "self_ns": total // 2,
        "mean_ns": round(total / calls, 1),
        "max_ns": mx,
        "raised": raised,
    }


def _node(site: int, calls: int, total: int, children: list | None = None) -> dict:
    return {
        "site": site,
        "calls": calls,
        "total_ns": total,
        "self_ns": total - sum(c["total_ns"] for c in children or []),
        "max_ns": total,
        "raised": 0,
        "children": children or [],
    }


def _part(pid: int, scale: int, *, timeline: bool = False, started: int | None = None) -> dict:
    """A process that called work() `scale` times and, inside it, helper() `2*scale` times."""
    sites = [
        _site(10, "work", scale, 1000 * scale, 1500),
        _site(3, "helper", 2 * scale, 400 * scale, 300 + pid % 7),
    ]
    doc = {
        "version": 2,
        "python": "3.11.7",
        "argv": ["m.py"],
        "pid": pid,
        "wall_ns": 5000 * scale,
        "parts": [new_part_id(pid)],
        "sites": sites,
        "roots": [
            {
                "kind": "thread",
                "name": "MainThread",
                "thread_id": 100 + pid,
                "total_ns": 1000 * scale,
                "children": [_node(0, scale, 1000 * scale, [_node(1, 2 * scale, 400 * scale)])],
            }
        ],
        "timeline": None,
        "files": {"/app/m.py": {"sha256": "ab" * 32, "source": "def work(): ...\n"}},
    }
    if timeline:
        doc["timeline"] = {
            "dropped": pid % 3,
            "events": [
                {"root": 0, "site": 0, "start_ns": 10, "end_ns": 1010, "raised": False},
                {"root": 0, "site": 1, "start_ns": 20, "end_ns": 220, "raised": False},
            ],
        }
    if started is not None:
        doc["started_unix_ns"] = started
    return doc


def _by_callee(doc: dict) -> dict:
    return {row["callee"]: row for row in doc["sites"]}


def test_sums_maxes_and_counts_are_exact():
    parts = [_part(pid, scale) for pid, scale in ((11, 1000), (12, 1000), (13, 3))]
    merged = combine(parts)
    work, helper = _by_callee(merged)["work"], _by_callee(merged)["helper"]
    assert work["calls"] == 2003 and work["total_ns"] == 1000 * 2003
    assert work["self_ns"] == 500 * 2003 and work["processes"] == 3
    assert helper["calls"] == 2 * 2003 and helper["max_ns"] == max(
        300 + p % 7 for p in (11, 12, 13)
    )
    assert work["mean_ns"] == 1000.0
    (root,) = merged["roots"]
    assert root["name"] == "MainThread" and root["processes"] == 3
    assert root["thread_id"] is None  # three processes' main threads: no one id
    (top,) = root["children"]
    assert merged["sites"][top["site"]]["callee"] == "work"
    assert top["calls"] == 2003 and top["processes"] == 3
    (child,) = top["children"]
    assert merged["sites"][child["site"]]["callee"] == "helper" and child["calls"] == 4006
    assert merged["processes"] == 3 and len(merged["parts"]) == 3


def test_merging_is_associative():
    a, b, c = (_part(pid, pid, timeline=True, started=10**9 + pid) for pid in (1, 2, 3))
    flat = combine([a, b, c])
    nested = combine([combine([a, b]), c])
    other = combine([a, combine([b, c])])
    for doc in (nested, other):
        assert sorted(doc["parts"]) == sorted(flat["parts"])
        doc["parts"] = flat["parts"]
    assert nested == flat == other


def test_a_part_twice_is_refused_not_double_counted():
    a, b = _part(1, 5), _part(2, 5)
    with pytest.raises(CombineError, match="twice"):
        combine([a, b, a])
    with pytest.raises(CombineError, match="twice"):
        combine([combine([a, b]), b])


def test_a_file_without_part_ids_given_twice_is_refused(tmp_path):
    unnamed = _part(3, 1)
    del unnamed["parts"]
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(unnamed))
    docs = [read_part(str(tmp_path / name)) for name in ("a.json", "b.json")]
    with pytest.raises(CombineError, match="twice"):
        combine(docs)


def test_per_process_keeps_threads_apart():
    merged = combine([_part(21, 2), _part(22, 3)], roots="per-process")
    assert [(r["name"], r["pid"], r["thread_id"]) for r in merged["roots"]] == [
        ("21: MainThread", 21, 121),
        ("22: MainThread", 22, 122),
    ]
    assert [r["children"][0]["calls"] for r in merged["roots"]] == [2, 3]


def test_timelines_share_one_clock_and_stay_nested():
    a = _part(1, 1, timeline=True, started=1_000_000)
    b = _part(2, 1, timeline=True, started=1_000_500)
    merged = combine([a, b], roots="per-process")
    assert merged["timeline"]["dropped"] == 1 + 2
    spans = [(e["root"], e["start_ns"], e["end_ns"]) for e in merged["timeline"]["events"]]
    assert spans == [(0, 10, 1010), (0, 20, 220), (1, 510, 1510), (1, 520, 720)]
    assert merged["started_unix_ns"] == 1_000_000


def test_changed_file_between_parts_is_named(recwarn):
    a, b = _part(1, 1), _part(2, 1)
    b["files"]["/app/m.py"] = {"sha256": "cd" * 32, "source": "changed\n"}
    merged = combine([a, b])
    assert merged["files"]["/app/m.py"]["source"] == "def work(): ...\n"
    assert any("/app/m.py differs between parts" in str(w.message) for w in recwarn)


@pytest.mark.parametrize(
    "content, why",
    [
        (b'{"version": 2, "sites": [', "not a JSON profile"),
        (b'{"version": 1, "sites": []}', "report version 1"),
        (b"[1, 2]", "not a profile document"),
        (b'{"version": 2, "sites": [{"file": "x"}]}', "a site without its position"),
        (b"\xff\xfe", "not a JSON profile"),
    ],
)
def test_unreadable_parts_are_named_and_skipped(tmp_path, content, why):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=f"skipped {path}: {why}"):
        assert read_part(str(path)) is None


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recompyle", "combine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_cli_merges_skips_bad_parts_and_refuses_duplicates(tmp_path):
    for pid in (1, 2):
        (tmp_path / f"p{pid}.json").write_text(json.dumps(_part(pid, 10 * pid)))
    (tmp_path / "cut.json").write_text(json.dumps(_part(3, 1))[:50])
    done = _cli("p1.json", "p2.json", "cut.json", "-o", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped cut.json" in done.stderr
    merged = json.loads((tmp_path / "out.json").read_text())
    assert _by_callee(merged)["work"]["calls"] == 30
    again = _cli("out.json", "p1.json", "-o", "again.json", cwd=tmp_path)
    assert again.returncode == 2 and "twice" in again.stderr
    assert not (tmp_path / "again.json").exists()
    text = _cli("p1.json", "p2.json", "-o", "-", "--format", "text", cwd=tmp_path)
    assert text.returncode == 0 and "30 calls" not in text.stderr
    assert "work" in text.stdout and "m.py:10:5" in text.stdout
    missing_dir = _cli("p1.json", "-o", "nodir/out.json", cwd=tmp_path)
    assert missing_dir.returncode == 2 and "no directory" in missing_dir.stderr
    nothing = _cli("cut.json", "-o", "x.json", cwd=tmp_path)
    assert nothing.returncode == 1 and "no part could be read" in nothing.stderr


def test_rows_without_some_counts_count_them_as_zero():
    a, b = _part(1, 2), _part(2, 3)
    for row in b["sites"]:
        del row["self_ns"]
    work = _by_callee(combine([a, b]))["work"]
    assert work["calls"] == 5 and work["self_ns"] == 500 * 2 and work["raised"] == 0


# -- roots kept apart, and one document's roots folded into one (the pytest plugin) ----------
# Tests' profiles, not processes' parts: no part ids, no process counts.


def site(callee: str, line: int, calls: int, total: int, self_ns: int, max_ns: int) -> dict:
    return {
        "file": "/p/m.py", "line": line, "col": 4, "end_line": line, "end_col": 9,
        "callee": callee, "caller": "<module>", "module": "m", "calls": calls,
        "total_ns": total, "self_ns": self_ns, "mean_ns": total / calls, "max_ns": max_ns,
        "raised": 0,
    }  # fmt: skip


def node(site: int, calls: int, total: int, self_ns: int, children=()) -> dict:
    return {
        "site": site, "calls": calls, "total_ns": total, "self_ns": self_ns,
        "max_ns": total, "raised": 0, "children": list(children),
    }  # fmt: skip


def doc(sites, roots, events=None) -> dict:
    return {
        "version": 2, "python": "3.11.7", "argv": ["x"], "pid": 1, "wall_ns": 100,
        "sites": sites, "roots": roots,
        "timeline": None if events is None else {"dropped": 0, "events": events},
        "files": {"/p/m.py": {"sha256": "00", "source": None}},
    }  # fmt: skip


def thread(name: str, children) -> dict:
    return {"kind": "thread", "name": name, "thread_id": 7, "total_ns": 50, "children": children}


# Process A: f -> g; process B: g alone (its site list in the other order) and f -> g.
A = doc(
    [site("f", 1, 1, 30, 10, 30), site("g", 2, 1, 20, 20, 20)],
    [thread("MainThread", [node(0, 1, 30, 10, [node(1, 1, 20, 20)])])],
    [{"root": 0, "site": 0, "start_ns": 0, "end_ns": 30, "raised": False},
     {"root": 0, "site": 1, "start_ns": 5, "end_ns": 25, "raised": False}],
)  # fmt: skip
B = doc(
    [site("g", 2, 2, 50, 50, 40), site("f", 1, 1, 15, 5, 15)],
    [thread("MainThread", [node(0, 1, 40, 40), node(1, 1, 15, 5, [node(0, 1, 10, 10)])]),
     thread("worker", [node(0, 0, 0, 0)])],
    [{"root": 0, "site": 0, "start_ns": 0, "end_ns": 40, "raised": False}],
)  # fmt: skip


def test_roots_apart_add_sites_and_keep_every_root() -> None:
    merged = combine([A, B], roots="apart", offsets_ns=[0, 1000])
    by_callee = {s["callee"]: s for s in merged["sites"]}
    assert by_callee["g"]["calls"] == 3 and by_callee["g"]["total_ns"] == 70
    assert by_callee["g"]["max_ns"] == 40 and by_callee["g"]["mean_ns"] == round(70 / 3, 1)
    assert by_callee["f"]["calls"] == 2 and by_callee["f"]["self_ns"] == 15
    assert [s["callee"] for s in merged["sites"]] == ["g", "f"]  # longest total first
    assert [r["name"] for r in merged["roots"]] == ["MainThread", "MainThread", "worker"]
    names = [s["callee"] for s in merged["sites"]]
    first = merged["roots"][0]["children"][0]
    assert names[first["site"]] == "f" and names[first["children"][0]["site"]] == "g"
    events = merged["timeline"]["events"]
    assert [(e["root"], names[e["site"]], e["start_ns"]) for e in events] == [
        (0, "f", 0), (0, "g", 5), (1, "g", 1000),
    ]  # fmt: skip
    assert merged["wall_ns"] == 1100  # from A's start to B's end, on the merged clock
    assert merged["files"] == A["files"]
    assert "processes" not in merged and "processes" not in merged["sites"][0]  # no parts


def test_fold_merges_the_trees_of_all_roots() -> None:
    folded = fold(B, "test", "tests/test_m.py::test_x", total_ns=99)
    (root,) = folded["roots"]
    assert (root["kind"], root["name"], root["total_ns"]) == ("test", "tests/test_m.py::test_x", 99)
    g, f = root["children"]
    assert (g["site"], g["calls"], g["total_ns"]) == (0, 1, 40)  # the worker's empty g added
    assert f["children"][0]["total_ns"] == 10
    assert folded["timeline"] == {"dropped": 0, "events": B["timeline"]["events"]}


def test_fold_keeps_one_threads_timeline() -> None:
    events = [
        {"root": 1, "site": 0, "start_ns": 0, "end_ns": 5, "raised": False},
        {"root": 0, "site": 0, "start_ns": 1, "end_ns": 9, "raised": False},
        {"root": 1, "site": 1, "start_ns": 6, "end_ns": 8, "raised": False},
    ]
    folded = fold({**B, "timeline": {"dropped": 2, "events": events}}, "test", "t")
    assert folded["timeline"]["dropped"] == 3
    assert [e["start_ns"] for e in folded["timeline"]["events"]] == [0, 6]
    assert {e["root"] for e in folded["timeline"]["events"]} == {0}
