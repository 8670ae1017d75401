#!/usr/bin/env python
"""Where a warm import's time goes, plain and ours, in fresh processes.

    python benches/bench_warm_import.py [--repeats 7]

The module set is ``imports_worker.py``'s (38 stdlib modules copied as ``benchlib``). After one
cold import of each kind has written the caches, every round runs one fresh process per kind
(order alternating) that imports the 38 modules as ``imports_worker.py --tool`` does, with the
stages of loading a cached module timed in the importing thread's CPU time:

* plain (``SourceFileLoader``): ``path_stats`` (the source's stat), ``get_data`` (reading the
  ``.pyc``), ``marshal.loads``;
* ours (``recompyle.cache.load_current``): reading the cache file, the stamp's ``os.stat``,
  the payload checksum, ``marshal.loads``, the site table's registration.

The total is the whole import loop; "the rest" is the total minus the stages (finders,
importlib's own steps, running the module bodies). Printed: the
minimum of each figure over the rounds, the cache files' sizes, and the total's ratio. The
timing wrappers add a little to both totals (about a microsecond per wrapped call).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import types

import imports_worker

HERE = os.path.dirname(os.path.abspath(__file__))


def _timed(acc: dict, label: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0) + time.thread_time_ns() - t0

    return wrapper


def child(kind: str, directory: str) -> dict:
    """One warm import of the module set, its stages timed."""
    import marshal

    names = imports_worker.module_names(directory)
    imports_worker._originals(names)
    sys.path.insert(0, directory)
    acc: dict[str, int] = {}
    timed_marshal = types.SimpleNamespace(
        loads=_timed(acc, "marshal.loads", marshal.loads), dumps=marshal.dumps
    )
    if kind == "ours":
        import recompyle
        from recompyle import cache

        cache.marshal = timed_marshal
        cache._read = _timed(acc, "read the cache file", cache._read)
        cache.stamp_of = _timed(acc, "stat the source", cache.stamp_of)
        cache._core = types.SimpleNamespace(
            register_site_table=_timed(
                acc, "register the site table", cache._core.register_site_table
            ),
            cache_checksum=_timed(acc, "payload checksum", cache._core.cache_checksum),
            FORMAT_VERSION=cache._core.FORMAT_VERSION,
            __file__=cache._core.__file__,
        )
        recompyle.install(f"{imports_worker.PACKAGE}.*")
    else:
        from importlib import _bootstrap_external

        _bootstrap_external.marshal = timed_marshal
        loader = _bootstrap_external.SourceFileLoader
        loader.get_data = _timed(acc, "read the cache file", loader.get_data)
        loader.path_stats = _timed(acc, "stat the source", loader.path_stats)
    t0 = time.thread_time_ns()
    for name in names:
        importlib.import_module(name)
    acc["total"] = time.thread_time_ns() - t0
    wanted = "RecompyleLoader" if kind == "ours" else "SourceFileLoader"
    loaders = {type(sys.modules[n].__spec__.loader).__name__ for n in names}
    if loaders != {wanted}:
        raise SystemExit(f"{kind}: loaded by {loaders}, expected {wanted}")
    return acc


def _run(kind: str, directory: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_")
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONPYCACHEPREFIX")
    }
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", kind, directory],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _size(pattern: str) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(pattern, recursive=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        json.dump(child(*args.child), sys.stdout)
        print()
        return 0
    with tempfile.TemporaryDirectory(prefix="recompyle_warm_") as directory:
        imports_worker.make(directory)
        for kind in ("plain", "ours"):  # cold: writes the caches
            _run(kind, directory)
        best: dict[str, dict[str, int]] = {"plain": {}, "ours": {}}
        for rep in range(args.repeats):
            for kind in ("plain", "ours") if rep % 2 == 0 else ("ours", "plain"):
                for label, ns in _run(kind, directory).items():
                    best[kind][label] = min(best[kind].get(label, ns), ns)
        pkg = os.path.join(directory, imports_worker.PACKAGE, "**", "__pycache__")
        ours_size = _size(os.path.join(pkg, "*.recompyle-*.pyc"))
        plain_size = _size(os.path.join(pkg, "*.pyc")) - ours_size
    print(
        f"warm import of 38 modules, Python {sys.version.split()[0]}: thread CPU ms, min of"
        f" {args.repeats} fresh processes each; cache files {plain_size / 1e6:.2f} MB plain,"
        f" {ours_size / 1e6:.2f} MB ours"
    )
    labels = ["marshal.loads", "read the cache file", "stat the source", "payload checksum"]
    labels += ["register the site table", "the rest", "total"]
    for kind in best:
        staged = sum(v for k, v in best[kind].items() if k != "total")
        best[kind]["the rest"] = best[kind]["total"] - staged
    print(f"{'stage':<28}{'plain':>8}{'ours':>8}")
    for label in labels:
        cells = [best[k].get(label) for k in ("plain", "ours")]
        print(
            f"{label:<28}"
            + "".join(f"{c / 1e6:8.2f}" if c is not None else f"{'-':>8}" for c in cells)
        )
    ratio = best["ours"]["total"] / best["plain"]["total"]
    print(f"total ours / plain: {ratio:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
