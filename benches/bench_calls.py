#!/usr/bin/env python
"""Per-call overhead of recompyle's call sites (flag, selector, proxy), measured in one process.

The same loop source is compiled twice: plainly with ``compile()`` and through
``recompyle.instrument_source`` (every function call in a loop becomes
``(f(...) if not __recompyle_on__ else __recompyle_c__(SITE, f, ...) if __recompyle_c_on__
else __recompyle__(SITE, f)(...))``, a method call
``(__recompyle_ml__(SITE, obj, 'm')(...) if __recompyle_on__ else obj.m(...))``).
Each ``run_<workload>(n)`` function is timed with ``time.perf_counter_ns`` under every
configuration, the configurations interleaved within each repeat so that drift hits
them all alike. The empty-loop time of the same configuration is subtracted, which
leaves nanoseconds per call; "added" is that minus the plain configuration's figure.

Run ``python benches/bench_calls.py --help`` for options; see benches/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import operator
import os
import platform
import statistics
import sys
import tempfile
import time

import targets as T

import recompyle
from recompyle import _core

# --------------------------------------------------------------------------- workloads

SOURCE = """\
def f(x):
    return x


def g(x, k=0):
    return x


class C:
    def m(self, x):
        return x


obj = C()
seq = [1, 2, 3]


def noop(e):
    return None


def run_empty(n):
    for i in range(n):
        pass


def run_call(n):
    for i in range(n):
        f(i)


def run_kwcall(n):
    for i in range(n):
        g(i, k=1)


def run_method(n):
    for i in range(n):
        obj.m(i)


def run_builtin(n):
    for i in range(n):
        len(seq)


def run_two_noops(n):
    for i in range(n):
        noop(i)
        noop(i)


# Reference: the same calls through CPython's own native forwarder, operator.call
# (a METH_FASTCALL|METH_KEYWORDS builtin, like the selector). Only run from the plain
# compilation; a yardstick for what "wrap every call in a builtin" costs here.
def ref_call(n):
    for i in range(n):
        _fwd(f, i)


def ref_kwcall(n):
    for i in range(n):
        _fwd(g, i, k=1)


def ref_method(n):
    for i in range(n):
        _fwd(obj.m, i)


def ref_builtin(n):
    for i in range(n):
        _fwd(len, seq)
"""

# operator.call is new in 3.11; without it the reference column is left out.
_FWD = getattr(operator, "call", None)

# (key, label) in table order; each key names run_<key> in SOURCE.
WORKLOADS = [
    ("call", "f(i)       plain function"),
    ("kwcall", "g(i, k=1)  keyword call"),
    ("method", "obj.m(i)   method call"),
    ("builtin", "len(x)     builtin call"),
]

# Measured configurations (the "handler net" column is derived, not measured).
CONFIGS = ["plain", "instr", "handler", "profiler", "tree", "timeline", "cprofile"] + (
    ["opcall"] if _FWD else []
)
# Table columns, in order.
COLUMNS = [
    "plain", "instr", "handler", "handler_net", "profiler", "tree", "timeline", "cprofile",
] + (["opcall"] if _FWD else [])  # fmt: skip

CONFIG_HELP = {
    "plain": "plain: source compiled with compile(), nothing running",
    "instr": "instr: instrumented, no handler, profiler off (idle sites: the flag's branch)",
    "handler": "handler: instrumented, no-op Python before+after handler registered",
    "handler_net": "handler net: 'handler' added cost minus the cost of two plain "
    "Python calls to a no-op function (i.e. what the machinery adds beyond the two "
    "handler calls themselves)",
    "profiler": "profiler: instrumented, recompyle's native profiler running, flat table only "
    "(Profiler(tree=False))",
    "tree": "tree: the profiler with its calling-context tree (the default Profiler())",
    "timeline": "timeline: the tree profiler recording a timeline (Profiler(timeline=True))",
    "cprofile": "cProfile: plain code under cProfile.Profile().enable()",
    "opcall": "op.call ref: reference, not recompyle: plain code with each call written "
    "operator.call(f, ...), CPython's own METH_FASTCALL|METH_KEYWORDS forwarder "
    "(what a generic native call wrapper costs on this interpreter)",
}

# The targets (benches/targets.py): (target, config, workloads it applies to) on added ns.
TARGETS = [
    (T.IDLE_CALL, "instr", ["call", "kwcall", "builtin"]),
    (T.IDLE_METHOD, "instr", ["method"]),
    (T.PROFILER, "profiler", [w for w, _ in WORKLOADS]),
]

# Ratio targets: (target, config, over config, workloads) on added(config) / added(over).
RATIO_TARGETS = [
    (T.TREE_OVER_CPROFILE, "tree", "cprofile", ["call", "method"]),
    (T.TIMELINE_OVER_TREE, "timeline", "tree", ["call", "method"]),
]


# --------------------------------------------------------------------------- setup


def _build() -> tuple[dict, dict, str]:
    """Compile SOURCE plainly and instrumented; return their namespaces and the path."""
    data = SOURCE.encode()
    # A real file, so the call sites register under a path that exists.
    fd, path = tempfile.mkstemp(prefix="recompyle_bench_", suffix=".py")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    plain_ns: dict = {"__name__": "bench_plain", "__file__": path, "_fwd": _FWD}
    exec(compile(data, path, "exec", dont_inherit=True), plain_ns)
    instr_ns: dict = {"__name__": "bench_instr", "__file__": path, "_fwd": _FWD}
    code = recompyle.instrument_source(data, path, "bench_instr")
    exec(code, instr_ns)
    selectors = {_core.SELECTOR_NAME, _core.METHOD_SELECTOR_NAME, _core.METHOD_LOOKUP_SELECTOR_NAME}
    for key, _ in WORKLOADS:
        names = instr_ns["run_" + key].__code__.co_names
        if not selectors & set(names):
            raise SystemExit(f"run_{key} was not instrumented (co_names={names})")
        if selectors & set(plain_ns["run_" + key].__code__.co_names):
            raise SystemExit(f"plain run_{key} unexpectedly instrumented")
    return plain_ns, instr_ns, path


def _noop_before(event):
    return None


def _noop_after(event):
    return None


# CPython 3.9/3.10 cache a code object's global and builtin lookups (the "opcache") only once
# it has been run 1024 times; a hot program's functions have been. 3.11+ specialises within
# one run's loop already.
OPCACHE_RUNS = 1100


def _warm_code(fn) -> None:
    """Run ``fn`` (a ``run_*`` loop) often enough, one iteration each, nothing listening,
    for 3.9/3.10's opcache to be on, as in a program whose functions run often."""
    for _ in range(OPCACHE_RUNS):
        fn(1)


def _time_once(config: str, fn, n: int) -> int:
    """Wall time in ns of fn(n) under ``config`` (set-up and tear-down not timed)."""
    pc = time.perf_counter_ns
    if config in ("plain", "instr", "opcall"):
        t0 = pc()
        fn(n)
        return pc() - t0
    if config == "handler":
        h = recompyle.add_handler(before=_noop_before, after=_noop_after)
        try:
            t0 = pc()
            fn(n)
            return pc() - t0
        finally:
            h.remove()
    if config in ("profiler", "tree", "timeline"):
        tree = config != "profiler"
        _core.profiler_reset()
        _core.profiler_start(tree)
        if config == "timeline":
            _core.timeline_acquire(2_000_000, 0)
        try:
            t0 = pc()
            fn(n)
            return pc() - t0
        finally:
            if config == "timeline":
                _core.timeline_release()
            _core.profiler_stop(tree)
    if config == "cprofile":
        prof = cProfile.Profile()
        prof.enable()
        try:
            t0 = pc()
            fn(n)
            return pc() - t0
        finally:
            prof.disable()
    raise ValueError(config)


def _check_listeners_fire(instr_ns: dict) -> None:
    """Sanity check: the handler and profiler really see the instrumented calls."""
    seen = []
    with recompyle.handler(before=lambda e: seen.append(1), after=lambda e: seen.append(2)):
        instr_ns["run_call"](10)
    if len(seen) < 20:
        raise SystemExit(f"handler saw {len(seen)} events for 10 calls; not instrumented?")
    _core.profiler_reset()
    _core.profiler_start()
    instr_ns["run_call"](10)
    _core.profiler_stop()
    calls = sum(row[1] for row in _core.profiler_snapshot())
    _core.profiler_reset()
    if calls < 10:
        raise SystemExit(f"profiler recorded {calls} calls for 10; not instrumented?")


# --------------------------------------------------------------------------- measure


def measure(n: int, repeats: int, verbose: bool) -> dict:
    plain_ns, instr_ns, path = _build()
    try:
        _check_listeners_fire(instr_ns)
        ns_for = {
            "plain": plain_ns,
            "instr": instr_ns,
            "handler": instr_ns,
            "profiler": instr_ns,
            "tree": instr_ns,
            "timeline": instr_ns,
            "cprofile": plain_ns,
            "opcall": plain_ns,
        }

        def fn_for(c: str, k: str):
            if c == "opcall" and k != "empty":
                return ns_for[c]["ref_" + k]
            return ns_for[c]["run_" + k]

        keys = ["empty"] + [w for w, _ in WORKLOADS]
        # samples[(config, key)] -> list of total ns, one per repeat
        samples: dict[tuple[str, str], list[int]] = {(c, k): [] for c in CONFIGS for k in keys}
        two_noops: list[int] = []
        two_noops_empty: list[int] = []

        # Warm up: let the specialising interpreter settle on every function.
        for fn in {id(f): f for f in (fn_for(c, k) for c in CONFIGS for k in keys)}.values():
            _warm_code(fn)
        _warm_code(plain_ns["run_two_noops"])
        warm = max(1000, n // 20)
        for c in CONFIGS:
            for k in keys:
                _time_once(c, fn_for(c, k), warm)
        _time_once("plain", plain_ns["run_two_noops"], warm)

        gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for r in range(repeats):
                t_rep = time.perf_counter()
                for wi, k in enumerate(keys):
                    # Rotate the configuration order per repeat and workload.
                    shift = (r + wi) % len(CONFIGS)
                    order = CONFIGS[shift:] + CONFIGS[:shift]
                    for c in order:
                        samples[(c, k)].append(_time_once(c, fn_for(c, k), n))
                # Calibration for "handler net": two plain Python calls per iteration.
                two_noops_empty.append(_time_once("plain", plain_ns["run_empty"], n))
                two_noops.append(_time_once("plain", plain_ns["run_two_noops"], n))
                if verbose:
                    print(
                        f"  repeat {r + 1}/{repeats} done in {time.perf_counter() - t_rep:.2f}s",
                        file=sys.stderr,
                    )
        finally:
            if gc_was_enabled:
                gc.enable()
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass

    def per_iter(xs: list[int], stat) -> float:
        return stat(xs) / n

    results: dict = {"n": n, "repeats": repeats, "stats": {}}
    for stat_name, stat in (("min", min), ("median", statistics.median)):
        table: dict = {}
        for c in CONFIGS:
            empty = per_iter(samples[(c, "empty")], stat)
            table[c] = {"empty_loop_ns": empty}
            for k, _ in WORKLOADS:
                table[c][k] = per_iter(samples[(c, k)], stat) - empty
        two = per_iter(two_noops, stat) - per_iter(two_noops_empty, stat)
        table["two_noop_calls_ns"] = two
        added: dict = {}
        for c in CONFIGS[1:]:
            added[c] = {k: table[c][k] - table["plain"][k] for k, _ in WORKLOADS}
        added["handler_net"] = {k: added["handler"][k] - two for k, _ in WORKLOADS}
        results["stats"][stat_name] = {"ns_per_call": table, "added_ns_per_call": added}

    # Spread: how far the median sits above the minimum, per measured cell (ns/iteration).
    spread = {f"{c}/{k}": (statistics.median(v) - min(v)) / n for (c, k), v in samples.items()}
    results["spread_ns_per_iter"] = spread
    results["raw_total_ns"] = {f"{c}/{k}": v for (c, k), v in samples.items()}
    results["raw_total_ns"]["calib/two_noops"] = two_noops
    results["raw_total_ns"]["calib/empty"] = two_noops_empty
    return results


# --------------------------------------------------------------------------- report


def evaluate_targets(results: dict, stat: str) -> list[dict]:
    added = results["stats"][stat]["added_ns_per_call"]
    out = []
    for target, config, workloads in TARGETS:
        for w in workloads:
            value = added[config][w]
            out.append(
                {
                    "target": target.name,
                    "config": config,
                    "workload": w,
                    "added_ns": value,
                    "limit_ns": target.limit,
                    "pass": target.met(value),
                }
            )
    for target, config, over, workloads in RATIO_TARGETS:
        for w in workloads:
            ratio = added[config][w] / added[over][w] if added[over][w] > 0 else float("inf")
            out.append(
                {
                    "target": target.name,
                    "config": config,
                    "workload": w,
                    "added_ns": added[config][w],
                    "ratio": ratio,
                    "limit_ratio": target.limit,
                    "pass": target.met(ratio),
                }
            )
    return out


def render(results: dict, stat: str) -> str:
    s = results["stats"][stat]
    table = s["ns_per_call"]
    added = s["added_ns_per_call"]
    cols = COLUMNS
    heads = {
        "plain": "plain",
        "instr": "instr (no handler)",
        "handler": "handler",
        "handler_net": "handler net",
        "profiler": "profiler (flat)",
        "tree": "tree profiler",
        "timeline": "tree+timeline",
        "cprofile": "cProfile",
        "opcall": "op.call ref",
    }
    label_w = max(len(label) for _, label in WORKLOADS)

    def cell(c: str, w: str) -> str:
        if c == "plain":
            return f"{table['plain'][w]:.1f} ns"
        if c == "handler_net":
            return f"+{added[c][w]:.1f}" if added[c][w] >= 0 else f"{added[c][w]:.1f}"
        a = added[c][w]
        sign = "+" if a >= 0 else ""
        return f"{table[c][w]:.1f} ({sign}{a:.1f})"

    col_w = max(
        max(len(h) for h in heads.values()),
        max(len(cell(c, w)) for c in cols for w, _ in WORKLOADS),
    )

    lines = []
    lines.append(
        "workload".ljust(label_w) + " | " + " | ".join(heads[c].rjust(col_w) for c in cols)
    )
    lines.append("-" * len(lines[0]))
    for w, label in WORKLOADS:
        lines.append(
            label.ljust(label_w) + " | " + " | ".join(cell(c, w).rjust(col_w) for c in cols)
        )
    lines.append("-" * len(lines[0]))
    empties = ", ".join(f"{c} {table[c]['empty_loop_ns']:.1f}" for c in CONFIGS)
    lines.append(f"empty-loop ns/iteration subtracted: {empties}")
    lines.append(
        f"two no-op Python calls (subtracted for 'handler net'): "
        f"{table['two_noop_calls_ns']:.1f} ns"
    )
    return "\n".join(lines)


def _noisy_cells(results: dict) -> list[str]:
    n = results["n"]
    out = []
    for cell, spread in results["spread_ns_per_iter"].items():
        lowest = min(results["raw_total_ns"][cell]) / n
        if lowest > 0 and spread > 0.10 * lowest:
            out.append(cell)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (3 repeats x 50k)")
    ap.add_argument("-n", "--iterations", type=int, help="loop iterations per timing")
    ap.add_argument("-r", "--repeats", type=int, help="repeats (statistic taken over them)")
    ap.add_argument(
        "--stat",
        choices=["min", "median"],
        default="min",
        help="statistic over repeats for the table and targets (default: min)",
    )
    ap.add_argument("--json", metavar="FILE", help="also dump all results as JSON")
    ap.add_argument("--cpu", type=int, help="pin the process to this CPU (Linux)")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 if a target fails (default: exit 0)"
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = ap.parse_args(argv)

    n = args.iterations or (50_000 if args.quick else 200_000)
    repeats = args.repeats or (3 if args.quick else 7)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    print(
        f"Python {sys.version.split()[0]} ({platform.python_implementation()}, "
        f"{platform.machine()}), recompyle {recompyle.__version__}"
    )
    print(
        f"{repeats} repeats x {n} iterations, statistic: {args.stat} over repeats, "
        f"configurations interleaved; values are ns per call after subtracting the "
        f"empty loop, (+x) = ns added vs plain"
    )
    t0 = time.perf_counter()
    results = measure(n, repeats, args.verbose)
    elapsed = time.perf_counter() - t0
    print()
    print(render(results, args.stat))
    print()
    for c in COLUMNS:
        print(f"  {CONFIG_HELP[c]}")
    print()

    checks = evaluate_targets(results, args.stat)
    labels = dict(WORKLOADS)
    print("Targets (informational unless --check):")
    for chk in checks:
        verdict = "PASS" if chk["pass"] else "FAIL"
        limit = (
            f"ratio {chk['ratio']:.2f}x (limit {chk['limit_ratio']:.2f}x)"
            if "ratio" in chk
            else f"(limit +{chk['limit_ns']:.0f})"
        )
        print(
            f"  [{verdict}] {chk['target']:<45} {labels[chk['workload']].split('  ')[0]:<10} "
            f"added {chk['added_ns']:+7.1f} ns {limit}"
        )
    worst = max(results["spread_ns_per_iter"].items(), key=lambda kv: kv[1])
    print(
        f"\nnoise: largest median-min spread {worst[1]:.1f} ns/iteration ({worst[0]}); "
        f"run took {elapsed:.1f}s"
    )
    noisy = _noisy_cells(results)
    if noisy:
        print(
            f"WARNING: noisy run: median more than 10% above min in {len(noisy)} cell(s) "
            f"(e.g. {', '.join(noisy[:3])}); rerun, or use more --repeats / --cpu"
        )

    if args.json:
        results["python"] = sys.version
        results["stat"] = args.stat
        results["targets"] = checks
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, sort_keys=True)
        print(f"results written to {args.json}")

    failed = [c for c in checks if not c["pass"]]
    if args.check and failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
