"""Readers for the exported formats: each file is read back by the program that people open
it with (``pstats``, gprof2dot, inferno) or checked against the format's published rules
(speedscope's JSON schema, the Chrome Trace Event format), so a test fails when a viewer
would refuse the file or show something else than the profile.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
SPEEDSCOPE_UNITS = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_speedscope(doc: dict[str, Any]) -> None:
    """The rules of speedscope's file-format schema (``FileFormat.File``), and the ones its
    importer enforces beyond the schema: evented events in time order, each close matching
    the innermost open frame, everything closed; samples and weights of one length."""
    assert doc["$schema"] == SPEEDSCOPE_SCHEMA
    assert set(doc) <= {"$schema", "shared", "profiles", "name", "activeProfileIndex", "exporter"}
    frames = doc["shared"]["frames"]
    assert isinstance(frames, list)
    for frame in frames:
        assert isinstance(frame["name"], str), frame
        assert set(frame) <= {"name", "file", "line", "col"}, frame
        assert isinstance(frame.get("file", ""), str)
        for key in ("line", "col"):
            assert key not in frame or _number(frame[key]), frame
    assert isinstance(doc["profiles"], list)
    if "activeProfileIndex" in doc:
        assert 0 <= doc["activeProfileIndex"] < max(1, len(doc["profiles"]))
    for key in ("name", "exporter"):
        assert isinstance(doc.get(key, ""), str)
    for profile in doc["profiles"]:
        assert profile["type"] in ("evented", "sampled")
        assert isinstance(profile["name"], str)
        assert profile["unit"] in SPEEDSCOPE_UNITS
        assert _number(profile["startValue"]) and _number(profile["endValue"])
        assert profile["startValue"] <= profile["endValue"]
        if profile["type"] == "evented":
            assert set(profile) == {"type", "name", "unit", "startValue", "endValue", "events"}
            stack: list[int] = []
            last = profile["startValue"]
            for event in profile["events"]:
                assert set(event) == {"type", "at", "frame"}
                assert event["type"] in ("O", "C")
                assert _number(event["at"]) and event["at"] >= last, "events out of order"
                assert isinstance(event["frame"], int) and 0 <= event["frame"] < len(frames)
                last = event["at"]
                if event["type"] == "O":
                    stack.append(event["frame"])
                else:
                    assert stack and stack.pop() == event["frame"], "close of a frame not on top"
            assert not stack, "frames left open"
            assert last <= profile["endValue"]
        else:
            keys = {"type", "name", "unit", "startValue", "endValue", "samples", "weights"}
            assert set(profile) == keys
            assert len(profile["samples"]) == len(profile["weights"])
            for sample in profile["samples"]:
                assert all(isinstance(f, int) and 0 <= f < len(frames) for f in sample)
            assert all(_number(w) and w >= 0 for w in profile["weights"])
            assert sum(profile["weights"]) <= profile["endValue"] - profile["startValue"]


def check_chrome(trace: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The Chrome Trace Event format's rules for the events used (JSON object form): every
    event has ``ph``, ``pid``, ``tid``, ``name``; ``X`` has numeric ``ts`` and ``dur >= 0``
    (microseconds); ``M`` is one of the metadata names with its ``args``; complete events
    of one thread nest (a child lies inside its parent), as the trace viewers require; and
    every thread with events is named. Returns the ``X`` events per tid."""
    events = trace["traceEvents"]
    assert isinstance(events, list)
    assert trace.get("displayTimeUnit", "ms") in ("ms", "ns")
    named: set[tuple[int, int]] = set()
    lanes: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        assert event["ph"] in ("X", "M"), event
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert isinstance(event["name"], str) and event["name"]
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name", "thread_sort_index"), event
            if event["name"] == "thread_sort_index":
                assert isinstance(event["args"]["sort_index"], int)
            else:
                assert isinstance(event["args"]["name"], str)
            if event["name"] == "thread_name":
                named.add((event["pid"], event["tid"]))
        else:
            assert _number(event["ts"]) and _number(event["dur"]) and event["dur"] >= 0
            assert isinstance(event.get("args", {}), dict)
            assert (event["pid"], event["tid"]) in named, "events on an unnamed thread"
            lanes.setdefault(event["tid"], []).append(event)
    for lane in lanes.values():
        ordered = sorted(lane, key=lambda e: (e["ts"], -e["dur"]))
        open_ends: list[float] = []
        for event in ordered:
            while open_ends and open_ends[-1] <= event["ts"]:
                open_ends.pop()
            end = event["ts"] + event["dur"]
            assert not open_ends or end <= open_ends[-1] + 1e-9, f"not nested: {event}"
            open_ends.append(end)
    return lanes


def gprof2dot(fmt: str, path: Path) -> str:
    """``gprof2dot -f FMT path`` with every node and edge kept: the DOT text."""
    if importlib.util.find_spec("gprof2dot") is None:
        pytest.skip("gprof2dot is not installed (scripts/test.sh installs it from PyPI)")
    out = subprocess.run(
        [sys.executable, "-m", "gprof2dot", "-f", fmt, "-n", "0", "-e", "0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def inferno_flamegraph() -> str:
    """The ``inferno-flamegraph`` binary: $RECOMPYLE_INFERNO, the one scripts/test.sh
    installs under target/tools, or one on PATH."""
    for candidate in (
        os.environ.get("RECOMPYLE_INFERNO"),
        str(ROOT / "target" / "tools" / "bin" / "inferno-flamegraph"),
        shutil.which("inferno-flamegraph"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("inferno-flamegraph not found (scripts/test.sh installs it: cargo install inferno)")


def flamegraph_svg(path: Path) -> str:
    out = subprocess.run(
        [inferno_flamegraph(), "--minwidth", "0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "<svg" in out.stdout
    return out.stdout
