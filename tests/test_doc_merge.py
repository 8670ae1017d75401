"""Profile documents merged (``recompyle.doc_merge``): what the pytest plugin does with the
workers' and the tests' profiles."""

from __future__ import annotations

from recompyle.doc_merge import fold, merge


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


def test_merge_adds_sites_and_keeps_roots() -> None:
    merged = merge([A, B], offsets_ns=[0, 1000])
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
    assert merged["wall_ns"] == 200 and merged["files"] == A["files"]


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
