#!/usr/bin/env python
"""Where a cold import's time goes: each stage of making a module's code, plain and ours.

    python benches/bench_cold_import.py [--repeats 5]

The module set is ``imports_worker.py``'s (38 modules: the stdlib's ``typing``, ``argparse``,
``ast``, ``email.*``, ``json.*``, copied into a temporary directory). For every module this
process runs the stages a cold import runs, without importing anything:

* plain, as ``SourceFileLoader`` does: ``compile()`` of the source, then ``marshal.dumps``;
* ours, as ``recompyle.loader`` does: ``_core.transform`` (Rust: parse and rewrite),
  ``compile()`` of the rewritten text, ``Transformed.remap`` (the original positions put
  back), ``Transformed.register`` (the site table), then the cache file's ``marshal.dumps``
  and its two hashes (``recompyle.cache``).

CPython's ``compile()`` is not split into parse and code generation: 3.11 has no call that
parses without building the Python ``ast`` objects, and that alone takes longer than the
whole ``compile()``. Executing the module body and writing the file are left out (the
same for both, or noise from the disk). ``--variants`` also compiles the rewritten texts
edited into smaller rewrites (site ids of one digit; no site-id argument:
``__recompyle__(f)(x)``), not correct code, only to show what a smaller rewrite would cost
the compiler. Each figure is the
thread CPU time of the stage summed over the 38 modules, min over ``--repeats`` rounds
(plain and ours interleaved in each round), so a loaded machine inflates it little.
"""

from __future__ import annotations

import argparse
import marshal
import os
import re
import sys
import tempfile
import time

import imports_worker

from recompyle import _core, cache

_VERSION = sys.version_info[:2]
STAGES = [
    ("transform", "Rust transform (parse + rewrite)"),
    ("compile", "CPython compile() of the text"),
    ("remap", "position remap"),
    ("register", "site registration"),
    ("marshal", "marshal.dumps (+ hashes, ours)"),
]


def _clock(fn, *args):
    t0 = time.thread_time_ns()
    out = fn(*args)
    return out, time.thread_time_ns() - t0


def plain_round(files: list[tuple[str, bytes]]) -> dict[str, int]:
    t = dict.fromkeys(("compile", "marshal"), 0)
    for path, data in files:
        code, dt = _clock(compile, data, path, "exec", 0, True)
        t["compile"] += dt
        _, dt = _clock(marshal.dumps, code)
        t["marshal"] += dt
    return t


def ours_round(files: list[tuple[str, bytes]], sizes: dict) -> dict[str, int]:
    t = dict.fromkeys(("transform", "compile", "remap", "register", "marshal"), 0)
    sizes.update(rewritten=0, sites=0)
    for path, data in files:
        tr, dt = _clock(_core.transform, data, path, _VERSION)
        t["transform"] += dt
        source = tr.source
        sizes["rewritten"] += len(source.encode())
        sizes["sites"] += len(tr.sites)
        code, dt = _clock(compile, source, path, "exec", 0, True)
        t["compile"] += dt
        code, dt = _clock(tr.remap, code)
        t["remap"] += dt
        _, dt = _clock(tr.register, path, "bench")
        t["register"] += dt
        t0 = time.thread_time_ns()
        payload = marshal.dumps((cache.LAYOUT, tr.module_key, tr.site_table, code))
        cache._hash(data), cache._hash(payload)
        t["marshal"] += time.thread_time_ns() - t0
    return t


_SITE_ID = re.compile(r"(__recompyle(?:_m)?__\()\d+")


def variants(files: list[tuple[str, bytes]], repeats: int) -> dict[str, float]:
    """compile() time of the plain, rewritten and edited texts, interleaved, min over repeats."""
    rewritten = [(p, _core.transform(d, p, _VERSION).source) for p, d in files]
    texts = {
        "plain": [(p, d.decode("utf-8")) for p, d in files],
        "rewritten": rewritten,
        "site ids of one digit": [(p, _SITE_ID.sub(r"\g<1>7", s)) for p, s in rewritten],
        "no site-id argument": [
            (p, _SITE_ID.sub(r"\g<1>", s).replace("__(, ", "__(")) for p, s in rewritten
        ],
    }
    best = dict.fromkeys(texts, float("inf"))
    names = list(texts)
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t0 = time.thread_time_ns()
            for path, text in texts[name]:
                compile(text, path, "exec", dont_inherit=True)
            best[name] = min(best[name], time.thread_time_ns() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", action="store_true", help="also compile smaller rewrites")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recompyle_cold_") as directory:
        names = imports_worker.make(directory)
        files = []
        for name in names:
            rel = name.split(".")
            base = os.path.join(directory, *rel)
            path = os.path.join(base, "__init__.py") if os.path.isdir(base) else base + ".py"
            with open(path, "rb") as fh:
                files.append((path, fh.read()))
        best: dict[str, dict[str, int]] = {"plain": {}, "ours": {}}
        sizes: dict = {}
        for rep in range(args.repeats):
            order = ["plain", "ours"] if rep % 2 == 0 else ["ours", "plain"]
            for who in order:
                got = plain_round(files) if who == "plain" else ours_round(files, sizes)
                for k, v in got.items():
                    best[who][k] = min(best[who].get(k, v), v)
        compiled = variants(files, args.repeats) if args.variants else None
    original = sum(len(d) for _, d in files)
    print(
        f"cold import stages, {len(files)} modules, Python {sys.version.split()[0]}: thread CPU"
        f" ms summed over the modules, min of {args.repeats}"
    )
    print(
        f"source {original / 1e6:.2f} MB -> rewritten {sizes['rewritten'] / 1e6:.2f} MB"
        f" ({sizes['rewritten'] / original:.2f}x), {sizes['sites']} call sites"
    )
    print(f"{'stage':<44}{'plain':>9}{'ours':>9}")
    for key, label in STAGES:
        p, o = best["plain"].get(key), best["ours"].get(key)
        cell = lambda v: f"{v / 1e6:9.1f}" if v is not None else f"{'-':>9}"  # noqa: E731
        print(f"{label:<44}{cell(p)}{cell(o)}")
    total_p = best["plain"]["compile"] + best["plain"]["marshal"]
    total_o = sum(best["ours"][k] for k in ("transform", "compile", "remap", "register", "marshal"))
    print(f"{'total (compile + marshal; ours: all stages)':<44}{cell(total_p)}{cell(total_o)}")
    print(f"ratio ours / plain: {total_o / total_p:.2f}x")
    extra = best["ours"]["compile"] - best["plain"]["compile"]
    print(
        f"compile: {extra / 1e6:+.1f} ms for the rewritten text ({extra / sizes['sites'] / 1e3:.1f}"
        f" us per call site); the rest of ours: {(total_o - best['ours']['compile']) / 1e6:.1f} ms"
    )
    if compiled:
        print("compile() of smaller rewrites (not correct code; thread CPU, min, interleaved):")
        for name, ns in compiled.items():
            print(f"  {name:<24}{ns / 1e6:8.1f} ms {ns / compiled['plain']:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
