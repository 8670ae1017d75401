#!/usr/bin/env python
"""Where a warm import's time goes, plain and ours, in fresh processes.

    python benches/bench_warm_import.py [--repeats 21] [--cpu 1] [--stages] [--callgrind]

The module set is ``imports_worker.py``'s (38 stdlib modules copied as ``benchlib``). After one
cold import of each kind has written the caches, every round runs one fresh process per kind
(the order rotated from one round to the next) that imports the 38 modules as
``imports_worker.py --tool`` does, and times the import loop in the importing thread's CPU
time. Three kinds:

* ``plain``: CPython's ``SourceFileLoader`` and its timestamp ``.pyc``;
* ``floor``: the same loader on a copy of the module set whose ``.pyc`` files hold *our*
  instrumented code (each plain ``.pyc``'s header kept): what loading and running the
  instrumented code costs with none of recompyle's own work (no finder, no validation, no
  checksum, no site table). It is the floor a cache format can reach; above it is the size of
  the rewritten code, which is the transform's (issue 20, items 2 and 3);
* ``ours``: ``recompyle.install`` and a warm cache.

Every kind imports ``recompyle._core`` before timing (the floor's code needs the selector
builtins), so the three start from the same heap.

Printed: the median and minimum of each total over the rounds and their ratios to plain. With
``--stages``, as many rounds again with the stages of loading a module timed (each wrapped
call adds about a microsecond, so these totals are a little higher):

* plain and floor (``SourceFileLoader``): ``path_stats`` (the source's stat), ``get_data``
  (reading the ``.pyc``), ``marshal.loads``;
* ours (``recompyle.cache.load_current``): reading the cache file, the stamp's ``os.stat``,
  the payload checksum, ``marshal.loads``, the site table's registration;

"the rest" is the total minus the stages (finders, importlib's own steps, running the
module bodies). With ``--callgrind``, the instructions each kind executes (valgrind's
callgrind, which a loaded machine does not move): of the import loop (a process that stops
before it minus one that runs it; both end with ``os._exit``) and of the whole process's
end (atexit callbacks and finalization, which ours adds to: the selectors given to the
start-up copy of the builtins, ``recompyle.loader``).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import marshal
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types

import callgrind_run
import imports_worker

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("plain", "floor", "ours")


def _timed(acc: dict, label: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0) + time.thread_time_ns() - t0

    return wrapper


def _set_up(kind: str, directory: str, stages: bool, acc: dict) -> list[str]:
    """Everything before the timed loop: the originals, the path, the hooks."""
    names = imports_worker.module_names(directory)
    imports_worker._originals(names)
    sys.path.insert(0, directory)
    import recompyle
    from recompyle import _core, cache

    timed_marshal = types.SimpleNamespace(
        loads=_timed(acc, "marshal.loads", marshal.loads), dumps=marshal.dumps
    )
    if kind == "ours":
        cache.config_tag()  # what the timing wrappers below would hide from it
        if stages:
            cache.marshal = timed_marshal  # type: ignore[assignment]
            cache._read = _timed(acc, "read the cache file", cache._read)
            cache.stamp_of = _timed(acc, "stat the source", cache.stamp_of)
            cache._core = types.SimpleNamespace(  # type: ignore[assignment]
                register_site_table=_timed(
                    acc, "register the site table", _core.register_site_table
                ),
                cache_checksum=_timed(acc, "payload checksum", _core.cache_checksum),
            )
        recompyle.install(f"{imports_worker.PACKAGE}.*")
    elif stages:
        from importlib import _bootstrap_external

        _bootstrap_external.marshal = timed_marshal  # type: ignore[attr-defined]
        loader = _bootstrap_external.SourceFileLoader
        loader.get_data = _timed(acc, "read the cache file", loader.get_data)
        loader.path_stats = _timed(acc, "stat the source", loader.path_stats)
    return names


def _check(kind: str, names: list[str]) -> None:
    """The loaders were the kind's, and the floor really ran instrumented code."""
    from recompyle import _core

    wanted = "RecompyleLoader" if kind == "ours" else "SourceFileLoader"
    loaders = {type(sys.modules[n].__spec__.loader).__name__ for n in names}
    if loaders != {wanted}:
        raise SystemExit(f"{kind}: loaded by {loaders}, expected {wanted}")
    selectors = {_core.SELECTOR_NAME, _core.METHOD_SELECTOR_NAME, _core.METHOD_LOOKUP_SELECTOR_NAME}
    instrumented = any(
        selectors & set(getattr(getattr(value, "__code__", None), "co_names", ()))
        for n in names
        for value in vars(sys.modules[n]).values()
    )
    if instrumented != (kind != "plain"):
        raise SystemExit(f"{kind}: instrumented code {'not ' * (not instrumented)}found")


def child(kind: str, directory: str, stages: bool, cpu: int | None) -> dict:
    """One warm import of the module set, timed (and its stages, with ``stages``)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    acc: dict[str, int] = {}
    names = _set_up(kind, directory, stages, acc)
    t0 = time.thread_time_ns()
    for name in names:
        importlib.import_module(name)
    acc["total"] = time.thread_time_ns() - t0
    _check(kind, names)
    return acc


def callgrind_child(kind: str, directory: str, part: str) -> None:
    """Under valgrind: set up, then stop (``setup``), import and stop (``import``), or
    import and end the process as usual (``exit``). Nothing else runs after the imports
    (the timed runs check the loaders), so the difference of two parts is theirs alone."""
    names = _set_up(kind, directory, False, {})
    if part != "setup":
        for name in names:
            importlib.import_module(name)
    sys.stdout.flush()
    if part != "exit":
        os._exit(0)


def _env() -> dict:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_")
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONPYCACHEPREFIX")
    }


def _run(kind: str, directory: str, stages: bool = False, cpu: int | None = None) -> dict:
    argv = [sys.executable, os.path.abspath(__file__), "--child", kind, directory]
    argv += ["--stages"] * stages + (["--cpu", str(cpu)] if cpu is not None else [])
    proc = subprocess.run(
        argv, env=_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _instructions(kind: str, directory: str, part: str) -> int:
    return callgrind_run.instructions(
        [os.path.abspath(__file__), "--callgrind-child", kind, directory, part],
        f"{kind} {part}",
        env=dict(_env(), PYTHONHASHSEED="0"),
    )


def _size(pattern: str) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(pattern, recursive=True))


def make_floor(directory: str, floor: str) -> None:
    """``floor``: a copy of ``directory`` (mtimes kept, so the plain ``.pyc`` files stay
    valid) whose plain ``.pyc`` files hold the code of our cache files."""
    from recompyle import cache

    shutil.copytree(directory, floor, copy_function=shutil.copy2)
    tag = cache.config_tag()
    ours = glob.glob(os.path.join(floor, "**", f"*.{tag}.pyc"), recursive=True)
    if not ours:
        raise SystemExit("no cache file of this build to make the floor from")
    for path in ours:
        with open(path, "rb") as f:
            blob = f.read()
        code = marshal.loads(memoryview(blob)[cache._HEADER : -cache._TRAILER])[-1]
        plain = path[: -len(f".{tag}.pyc")] + ".pyc"
        with open(plain, "rb") as f:
            header = f.read(16)
        with open(plain, "wb") as f:
            f.write(header + marshal.dumps(code))


def _table(rows: dict[str, list[int]], unit: float, fmt: str) -> None:
    base = rows["plain"]
    print(f"{'':8}{'median':>10}{'ratio':>8}{'min':>10}{'ratio':>8}")
    for kind, values in rows.items():
        med, low = statistics.median(values), min(values)
        print(
            f"{kind:8}{med / unit:10{fmt}}{med / statistics.median(base):7.3f}x"
            f"{low / unit:10{fmt}}{low / min(base):7.3f}x"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--cpu", type=int, help="pin every child to this CPU (Linux)")
    ap.add_argument("--stages", action="store_true", help="also time the stages")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions")
    ap.add_argument("-v", "--verbose", action="store_true", help="raw counts on stderr")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--callgrind-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        json.dump(child(*args.child, args.stages, args.cpu), sys.stdout)
        print()
        return 0
    if args.callgrind_child:
        callgrind_child(*args.callgrind_child)
        return 0
    if args.callgrind and shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="recompyle_warm_") as tmp:
        directory = os.path.join(tmp, "set")
        imports_worker.make(directory)
        for kind in ("plain", "ours"):  # cold: writes the caches
            _run(kind, directory)
        # Sources written just now get no stamp (recompyle.cache): a second warm-up round
        # records it, as a user's second run would.
        _run("ours", directory)
        dirs = {"plain": directory, "floor": os.path.join(tmp, "floor"), "ours": directory}
        make_floor(directory, dirs["floor"])
        totals: dict[str, list[int]] = {k: [] for k in KINDS}
        staged: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        for rep in range(args.repeats):
            order = KINDS[rep % 3 :] + KINDS[: rep % 3]
            for kind in order:
                totals[kind].append(_run(kind, dirs[kind], cpu=args.cpu)["total"])
            for kind in order if args.stages else ():
                for label, ns in _run(kind, dirs[kind], True, args.cpu).items():
                    staged[kind][label] = min(staged[kind].get(label, ns), ns)
        pkg = os.path.join(directory, imports_worker.PACKAGE, "**", "__pycache__")
        ours_size = _size(os.path.join(pkg, "*.recompyle-*.pyc"))
        plain_size = _size(os.path.join(pkg, "*.pyc")) - ours_size
        floor_size = _size(os.path.join(dirs["floor"], "**", "*.pyc")) - ours_size
        counts: dict[str, dict[str, int]] = {}
        if args.callgrind:
            for kind in KINDS:
                parts = ("setup", "import", "exit") if kind != "floor" else ("setup", "import")
                counts[kind] = {p: _instructions(kind, dirs[kind], p) for p in parts}
            if args.verbose:
                print(json.dumps(counts), file=sys.stderr)
    print(
        f"warm import of 38 modules, Python {sys.version.split()[0]}: thread CPU ms of the"
        f" import loop, {args.repeats} fresh processes each, interleaved"
        f"{f', pinned to CPU {args.cpu}' if args.cpu is not None else ''}; .pyc files"
        f" {plain_size / 1e6:.2f} MB plain, {floor_size / 1e6:.2f} MB floor,"
        f" {ours_size / 1e6:.2f} MB ours (site table included)"
    )
    _table(totals, 1e6, ".2f")
    if args.stages:
        print(f"stages (thread CPU ms, min of {args.repeats}; wrapped calls):")
        labels = ["marshal.loads", "read the cache file", "stat the source", "payload checksum"]
        labels += ["register the site table", "the rest", "total"]
        for kind in KINDS:
            inner = sum(v for k, v in staged[kind].items() if k != "total")
            staged[kind]["the rest"] = staged[kind]["total"] - inner
        print(f"{'stage':<28}" + "".join(f"{k:>8}" for k in KINDS))
        for label in labels:
            cells = [staged[k].get(label) for k in KINDS]
            print(
                f"{label:<28}"
                + "".join(f"{c / 1e6:8.2f}" if c is not None else f"{'-':>8}" for c in cells)
            )
    if counts:
        print("instructions (callgrind, millions):")
        print(f"{'':8}{'import':>10}{'ratio':>8}{'exit':>10}")
        base = counts["plain"]["import"] - counts["plain"]["setup"]
        for kind in KINDS:
            c = counts[kind]
            loop = c["import"] - c["setup"]
            end = f"{(c['exit'] - c['import']) / 1e6:10.2f}" if "exit" in c else f"{'-':>10}"
            print(f"{kind:8}{loop / 1e6:10.2f}{loop / base:7.3f}x{end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
