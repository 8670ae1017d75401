#!/usr/bin/env python
"""Where a cold import's time goes: each stage of making a module's code, plain and ours.

    python benches/bench_cold_import.py [--repeats 5] [--variants] [--callgrind]

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
edited into other rewrites (``VARIANTS``: other site-id literals, no id, the old form of a
site, the selector call alone without the flag: ``idle_forms.old_form``), not correct code,
only to show what each would cost the compiler. Each figure is the
thread CPU time of the stage summed over the 38 modules, min over ``--repeats`` rounds
(plain and ours interleaved in each round), so a loaded machine inflates it little.

``--callgrind`` (with or without ``--variants``) counts instructions instead, which a
neighbour on a shared machine does not change: for each stage and variant, two child
processes under valgrind's callgrind prepare the same inputs (the same files, in one
directory, ``PYTHONHASHSEED=0``) and run the stage zero times and once; the difference is
one run of the stage over the 38 modules. Instructions are not time (the ids of 2**63 and
more cost the compiler more time than their instructions say).
"""

from __future__ import annotations

import argparse
import marshal
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Callable

import callgrind_run
import imports_worker
from idle_forms import old_form

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


_SITE_ID = re.compile(r"(__recompyle(?:_m)?__\()(\d+)")


def _ids(text: str, value: Callable[[int], int]) -> str:
    return _SITE_ID.sub(lambda m: m.group(1) + str(value(int(m.group(2)))), text)


# name -> how the rewritten text is edited into it (None: the plain source, or the rewrite).
VARIANTS: dict[str, Callable[[str], str] | None] = {
    "plain": None,
    "rewritten (today)": None,
    "ids >= 2**63 (32-bit keys)": lambda s: _ids(s, lambda i: i | 1 << 63),
    "ids of 30 bits": lambda s: _ids(s, lambda i: (i >> 32) % (1 << 29) + (1 << 29) + i % 65536),
    "ids = site index": lambda s: _ids(s, lambda i: i & 0xFFFFFFFF),
    "one id for all sites": lambda s: _ids(s, lambda i: 7),
    "no site-id argument": lambda s: _SITE_ID.sub(r"\g<1>", s).replace("__(, ", "__("),
    "old form: the selector call alone, no flag": old_form,
}


def variant_texts(files: list[tuple[str, bytes]]) -> dict[str, list[tuple[str, str]]]:
    rewritten = [(p, _core.transform(d, p, _VERSION).source) for p, d in files]
    texts = {"plain": [(p, d.decode("utf-8")) for p, d in files], "rewritten (today)": rewritten}
    for name, edit in VARIANTS.items():
        if edit is not None:
            texts[name] = [(p, edit(s)) for p, s in rewritten]
    return texts


def variants(files: list[tuple[str, bytes]], repeats: int) -> dict[str, float]:
    """compile() time of the plain, rewritten and edited texts, interleaved, min over repeats."""
    texts = variant_texts(files)
    best = dict.fromkeys(texts, float("inf"))
    names = list(texts)
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t0 = time.thread_time_ns()
            for path, text in texts[name]:
                compile(text, path, "exec", dont_inherit=True)
            best[name] = min(best[name], time.thread_time_ns() - t0)
    return best


def _read(directory: str, names: list[str]) -> list[tuple[str, bytes]]:
    files = []
    for name in names:
        base = os.path.join(directory, *name.split("."))
        path = os.path.join(base, "__init__.py") if os.path.isdir(base) else base + ".py"
        with open(path, "rb") as fh:
            files.append((path, fh.read()))
    return files


def _child(directory: str, what: str, rounds: int) -> None:
    """Under callgrind: prepare as every child does, then run ``what`` ``rounds`` times."""
    files = _read(directory, imports_worker.module_names(directory))
    if what.startswith("compile:"):
        texts = variant_texts(files)[what[len("compile:") :]]
        for _ in range(rounds):
            for path, text in texts:
                compile(text, path, "exec", dont_inherit=True)
        return
    trs = [_core.transform(d, p, _VERSION) for p, d in files]
    codes = [compile(t.source, p, "exec", dont_inherit=True) for t, (p, _) in zip(trs, files)]
    plain = [compile(d, p, "exec", dont_inherit=True) for p, d in files]
    for _ in range(rounds):
        for (path, data), tr, code, plain_code in zip(files, trs, codes, plain):
            if what == "transform":
                _core.transform(data, path, _VERSION)
            elif what == "remap":
                tr.remap(code)
            elif what == "register":
                tr.register(path, "bench")
            elif what == "marshal":
                payload = marshal.dumps((cache.LAYOUT, tr.module_key, tr.site_table, code))
                cache._hash(data), cache._hash(payload)
            elif what == "plain marshal":
                marshal.dumps(plain_code)


def _instructions(directory: str, what: str) -> int:
    """Instructions of one run of ``what``: one round minus no round, each under callgrind."""
    counts = [
        callgrind_run.instructions(
            [os.path.abspath(__file__), "--child", what, "--rounds", str(rounds), directory],
            repr(what),
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        for rounds in (0, 1)
    ]
    return counts[1] - counts[0]


def callgrind(directory: str, with_variants: bool) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--callgrind needs valgrind")

    def m(n: int | None) -> str:
        return f"{n / 1e6:9.1f}" if n is not None else f"{'-':>9}"

    print(
        f"cold import stages, {len(imports_worker.module_names(directory))} modules,"
        f" Python {sys.version.split()[0]}: instructions"
        " (millions, callgrind), one run of each stage"
    )
    plain = {"compile": _instructions(directory, "compile:plain")}
    plain["marshal"] = _instructions(directory, "plain marshal")
    ours = {"compile": _instructions(directory, "compile:rewritten (today)")}
    for stage in ("transform", "remap", "register", "marshal"):
        ours[stage] = _instructions(directory, stage)
    print(f"{'stage':<44}{'plain':>9}{'ours':>9}")
    for key, label in STAGES:
        print(f"{label:<44}{m(plain.get(key))}{m(ours[key])}")
    total_p, total_o = sum(plain.values()), sum(ours.values())
    print(f"{'total':<44}{m(total_p)}{m(total_o)}")
    print(f"ratio ours / plain: {total_o / total_p:.2f}x")
    if not with_variants:
        return
    print("compile() of other rewrites (not correct code), instructions:")
    for name in VARIANTS:
        if name == "plain":
            n = plain["compile"]
        elif name == "rewritten (today)":
            n = ours["compile"]
        else:
            n = _instructions(directory, "compile:" + name)
        print(f"  {name:<28}{m(n)} M {n / plain['compile']:6.3f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", action="store_true", help="also compile other rewrites")
    ap.add_argument("--callgrind", action="store_true", help="count instructions instead")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("directory", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.directory, args.child, args.rounds)
        return 0
    with tempfile.TemporaryDirectory(prefix="recompyle_cold_") as directory:
        files = _read(directory, imports_worker.make(directory))
        if args.callgrind:
            callgrind(directory, args.variants)
            return 0
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
        print("compile() of other rewrites (not correct code; thread CPU, min, interleaved):")
        for name, ns in compiled.items():
            print(f"  {name:<28}{ns / 1e6:8.1f} ms {ns / compiled['plain']:6.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
