#!/usr/bin/env python
"""The two forms of a call site side by side, in one build: what the flag form
(``(__recompyle__(ID, f) if __recompyle_on__ else f)(x)``) saves an idle call and costs a
listened call and a cold compile, against the selector call alone (``__recompyle__(ID, f)(x)``,
the form before issue 20 item 2, still that of straight-line module code).

    python benches/idle_forms.py callgrind [--opcache on|off] [--configs instr,handler,profiler]
    python benches/idle_forms.py compile [--repeats 7]

The old form is made from the transform's own output by a regular expression that turns
every flag form back into the selector call it contains, so both run the same build, sites
and selector. ``callgrind``: instructions per iteration of ``bench_calls.py``'s loops, as
``callgrind_calls.py`` counts them (two runs under valgrind, at 20,000 and 120,000
iterations); ``--opcache on`` runs each loop 1,100 times first, so 3.9/3.10 cache its global
loads, ``off`` does not. ``compile``: CPython ``compile()`` of the 38 modules of
``bench_cold_import.py`` (thread CPU time, min over the repeats), plain, in the flag form
and in the old form.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

import callgrind_run

HERE = os.path.dirname(os.path.abspath(__file__))
FLAG_FORM = re.compile(r"\((__recompyle(?:_m)?__\(\d+, )(.+?)\) if __recompyle_on__ else \2\)")


def old_form(text: str) -> str:
    """``text`` with every flag-form site turned into the selector call alone."""
    return FLAG_FORM.sub(r"\1\2)", text)


def one(form: str, opcache: str, config: str, workload: str, n: int) -> None:
    """Inside valgrind: bench_calls.py's set-up, its instrumented loops in ``form``."""
    import bench_calls

    from recompyle import _core

    def instrument_source(data: bytes, path: str, module: str):
        t = _core.transform(data, path, sys.version_info[:2])
        text = t.source if form == "new" else old_form(t.source)
        code = t.remap(compile(text, path, "exec", dont_inherit=True))
        t.register(path, module)
        return code

    bench_calls.recompyle.instrument_source = instrument_source
    plain_ns, instr_ns, path = bench_calls._build()
    try:
        fn = (plain_ns if config == "plain" else instr_ns)["run_" + workload]
        if opcache == "on":
            bench_calls._warm_code(fn)
        bench_calls._time_once(config, fn, 200)
        bench_calls._time_once(config, fn, n)
    finally:
        os.unlink(path)


def count(*args: object) -> int:
    return callgrind_run.instructions(
        [os.path.abspath(__file__), "--one", *map(str, args)], " ".join(map(str, args))
    )


def callgrind(opcache: str, configs: list[str], workloads: list[str]) -> None:
    print(f"instructions per iteration added to plain, Python {sys.version.split()[0]}, "
          f"opcache {opcache}: old form -> flag form")  # fmt: skip
    for w in workloads:
        cells = []
        for form in ("old", "new"):
            per = {}
            for c in ["plain", *configs]:
                per[c] = (
                    count(form, opcache, c, w, 120_000) - count(form, opcache, c, w, 20_000)
                ) / 100_000
            cells.append(per)
        old, new = cells
        row = "  ".join(
            f"{c} {old[c] - old['plain']:+.0f} -> {new[c] - new['plain']:+.0f}" for c in configs
        )
        print(f"{w:<8} plain {old['plain']:.0f} / {new['plain']:.0f}  {row}", flush=True)


def compile_times(repeats: int) -> None:
    import imports_worker

    from recompyle import _core

    root = tempfile.mkdtemp(prefix="recompyle_forms_")
    imports_worker.make(root)
    texts: dict[str, list[tuple[str, str | bytes]]] = {"plain": [], "flag form": [], "old form": []}
    sites = flag_sites = 0
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            t = _core.transform(data, path, sys.version_info[:2])
            old, n = FLAG_FORM.subn(r"\1\2)", t.source)
            sites += len(t.sites)
            flag_sites += n
            texts["plain"].append((path, data))
            texts["flag form"].append((path, t.source))
            texts["old form"].append((path, old))
    best = dict.fromkeys(texts, float("inf"))
    for _ in range(repeats):
        for key, items in texts.items():
            t0 = time.thread_time_ns()
            for path, text in items:
                compile(text, path, "exec", 0, True)
            best[key] = min(best[key], time.thread_time_ns() - t0)
    version = sys.version.split()[0]
    print(
        f"{len(texts['plain'])} modules, {sites} sites, {flag_sites} in the flag form; "
        f"Python {version}, compile() thread CPU time, min of {repeats}"
    )
    for key, ns in best.items():
        size = sum(len(text) for _, text in texts[key]) / 1e6
        print(f"{key:<10} {size:.2f} MB  {ns / 1e6:7.1f} ms  {ns / best['plain']:.2f}x plain")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, HERE)
    if argv[:1] == ["--one"]:
        form, opcache, config, workload, n = argv[1:]
        one(form, opcache, config, workload, int(n))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["callgrind", "compile"])
    ap.add_argument("--opcache", choices=["on", "off"], default="on")
    ap.add_argument("--configs", default="instr,handler,profiler")
    ap.add_argument("--workloads", default="call,method")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    if args.what == "callgrind":
        callgrind(args.opcache, args.configs.split(","), args.workloads.split(","))
    else:
        compile_times(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
