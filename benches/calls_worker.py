#!/usr/bin/env python
"""Per-call cost under one family of tools, measured in this process; prints JSON.

Run by ``run_all.py`` once per family, each in its own interpreter, because recompyle
0.4.1 (PyPI) has the same import name as this project and pyccolo patches the interpreter
for as long as it is loaded. Every family's process also times the plain code, so each
tool is judged against a baseline measured in its own process, interleaved with it.

    python benches/calls_worker.py --family ours|recompyle041|pyccolo [-n N] [-r R]

The workload module (``WORKLOAD`` below) is written to a real file so that tools that read
source through ``inspect`` (recompyle 0.4.1's ``wrap_calls``) or import hooks (pyccolo)
can. Each ``run_<key>(n)`` is timed with ``perf_counter_ns`` minus ``run_empty(n)`` under the
same configuration: nanoseconds per call. Garbage collection is off while timing.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import tempfile
import time

WORKLOAD = """\
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
"""

WORKLOADS = ["call", "kwcall", "method", "builtin"]
RUN_NAMES = ["run_empty"] + [f"run_{k}" for k in WORKLOADS]


class Setup:
    """A configuration: the namespace whose ``run_*`` functions it times, and what to switch
    on around each timing (not timed itself)."""

    def __init__(self, ns: dict, enter=None, leave=None, scale: float = 1.0) -> None:
        self.ns, self.enter, self.leave, self.scale = ns, enter, leave, scale

    def time(self, name: str, n: int) -> int:
        fn = self.ns[name]
        if self.enter is not None:
            self.enter()
        try:
            t0 = time.perf_counter_ns()
            fn(n)
            return time.perf_counter_ns() - t0
        finally:
            if self.leave is not None:
                self.leave()


def _write_workload(directory: str, name: str) -> str:
    path = os.path.join(directory, name + ".py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(WORKLOAD)
    return path


def _plain(path: str, name: str) -> dict:
    with open(path, "rb") as fh:
        data = fh.read()
    ns: dict = {"__name__": name, "__file__": path}
    exec(compile(data, path, "exec", dont_inherit=True), ns)
    return ns


# --------------------------------------------------------------------------- families


def family_ours(directory: str) -> tuple[dict[str, Setup], dict]:
    import cProfile

    import recompyle
    from recompyle import _core

    path = _write_workload(directory, "wl_ours")
    plain = _plain(path, "wl_plain")
    with open(path, "rb") as fh:
        instr: dict = {"__name__": "wl_ours", "__file__": path}
        exec(recompyle.instrument_source(fh.read(), path, "wl_ours"), instr)
    if _core.SELECTOR_NAME not in instr["run_call"].__code__.co_names:
        raise SystemExit("workload not instrumented")

    seen: list[int] = []
    with recompyle.handler(before=lambda e: seen.append(1), after=lambda e: seen.append(2)):
        instr["run_call"](10)
        instr["run_method"](10)
    if len(seen) != 44:  # 2 x (10 calls + range) x 2 events
        raise SystemExit(f"handler saw {len(seen)} events for 22 calls")

    def before(event):
        return None

    def after(event):
        return None

    handle: list = []
    setups = {
        "plain": Setup(plain),
        "instr": Setup(instr),
        "handler": Setup(
            instr,
            lambda: handle.append(recompyle.add_handler(before=before, after=after)),
            lambda: handle.pop().remove(),
        ),
        "profiler": Setup(
            instr,
            lambda: (_core.profiler_reset(), _core.profiler_start()),
            _core.profiler_stop,
        ),
    }
    prof: list = []

    def cp_on():
        prof.append(cProfile.Profile())
        prof[-1].enable()

    setups["cprofile"] = Setup(plain, cp_on, lambda: prof.pop().disable())
    versions = {"recompyle": recompyle.__version__}
    try:
        import viztracer

        tracer = viztracer.VizTracer(verbose=0, tracer_entries=2_000_000)
        setups["viztracer"] = Setup(
            plain, tracer.start, lambda: (tracer.stop(), tracer.clear()), scale=0.25
        )
        versions["viztracer"] = viztracer.__version__
    except ImportError:
        pass
    try:
        import pyinstrument

        pi: list = []

        def pi_on():
            pi.append(pyinstrument.Profiler(interval=0.001))
            pi[-1].start()

        setups["pyinstrument"] = Setup(plain, pi_on, lambda: pi.pop().stop(), scale=0.25)
        versions["pyinstrument"] = pyinstrument.__version__
    except ImportError:
        pass
    return setups, versions


def family_recompyle041(directory: str) -> tuple[dict[str, Setup], dict]:
    import recompyle
    from recompyle import wrap_calls

    if getattr(recompyle, "__version__", None) is None:
        from recompyle.__about__ import __version__ as v041
    else:
        v041 = recompyle.__version__
    if v041 != "0.4.1":
        raise SystemExit(f"expected recompyle 0.4.1 on sys.path, found {v041}")

    path = _write_workload(directory, "wl_041")
    plain = _plain(path, "wl_plain")
    wrapped = _plain(path, "wl_041")
    count = [0]

    def counting(__call, _extras, *args, **kwargs):
        count[0] += 1
        return __call(*args, **kwargs)

    def noop_wrapper(__call, _extras, *args, **kwargs):
        return __call(*args, **kwargs)

    # wrap_calls refuses a function twice: the check uses a copy of the file.
    check = _plain(_write_workload(directory, "wl_041_check"), "wl_041_check")
    wrap_calls(wrapper=counting)(check["run_call"])(10)
    if count[0] < 10:
        raise SystemExit(f"wrap_calls wrapper saw {count[0]} calls for 10")
    for name in RUN_NAMES:
        wrapped[name] = wrap_calls(wrapper=noop_wrapper)(wrapped[name])
    return {"plain": Setup(plain), "wrap_calls": Setup(wrapped, scale=0.5)}, {
        "recompyle (PyPI)": v041
    }


def family_pyccolo(directory: str) -> tuple[dict[str, Setup], dict]:
    import pyccolo as pyc

    path = _write_workload(directory, "wl_pyccolo")
    plain = _plain(path, "wl_plain")
    counting = [False, 0]

    class NoopCalls(pyc.BaseTracer):
        """No-op before/after call handlers (one flag test, for the sanity check)."""

        def should_instrument_file(self, filename: str) -> bool:
            return filename == path

        @pyc.before_call
        def before(self, ret, *_, **__):
            if counting[0]:
                counting[1] += 1

        @pyc.after_call
        def after(self, ret, *_, **__):
            if counting[0]:
                counting[1] += 1

    tracer = NoopCalls.instance()
    sys.path.insert(0, directory)
    with tracer:
        module = importlib.import_module("wl_pyccolo")
    ns = vars(module)
    counting[0] = True
    with tracer:
        ns["run_call"](10)
    counting[0] = False
    if counting[1] < 20:
        raise SystemExit(f"pyccolo handlers saw {counting[1]} events for 10 calls")
    ctx: list = []

    def on():
        ctx.append(tracer.tracing_context())
        ctx[-1].__enter__()

    def off():
        ctx.pop().__exit__(None, None, None)

    from importlib.metadata import version

    return {"plain": Setup(plain), "pyccolo": Setup(ns, on, off, scale=0.01)}, {
        "pyccolo": version("pyccolo")
    }


FAMILIES = {"ours": family_ours, "recompyle041": family_recompyle041, "pyccolo": family_pyccolo}


# --------------------------------------------------------------------------- measure


def measure(setups: dict[str, Setup], n: int, repeats: int) -> dict:
    names = list(setups)
    samples: dict = {(c, r): [] for c in names for r in RUN_NAMES}
    calib: dict = {"empty": [], "two": []}
    for c in names:  # warm up: let the specialising interpreter settle
        for r in RUN_NAMES:
            setups[c].time(r, max(500, int(n * setups[c].scale) // 20))
    gc.collect()
    gc.disable()
    try:
        for rep in range(repeats):
            for wi, r in enumerate(RUN_NAMES):
                shift = (rep + wi) % len(names)
                for c in names[shift:] + names[:shift]:
                    k = max(1000, int(n * setups[c].scale))
                    samples[(c, r)].append(setups[c].time(r, k) / k)
            if "plain" in setups:
                calib["empty"].append(setups["plain"].time("run_empty", n) / n)
                calib["two"].append(setups["plain"].time("run_two_noops", n) / n)
    finally:
        gc.enable()
    out: dict = {"ns_per_call": {}, "empty_loop_ns": {}, "spread": {}}
    for c in names:
        empty = min(samples[(c, "run_empty")])
        out["empty_loop_ns"][c] = empty
        out["ns_per_call"][c] = {k: min(samples[(c, f"run_{k}")]) - empty for k in WORKLOADS}
        out["spread"][c] = {
            k: sorted(samples[(c, f"run_{k}")])[len(samples[(c, f"run_{k}")]) // 2]
            - min(samples[(c, f"run_{k}")])
            for k in WORKLOADS
        }
    out["two_noop_calls_ns"] = min(calib["two"]) - min(calib["empty"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=sorted(FAMILIES), required=True)
    ap.add_argument("-n", type=int, default=200_000, help="iterations per timing")
    ap.add_argument("-r", type=int, default=7, help="repeats (minimum taken)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recompyle_calls_") as directory:
        setups, versions = FAMILIES[args.family](directory)
        result = measure(setups, args.n, args.r)
    result.update(
        family=args.family,
        versions=versions,
        python=sys.version.split()[0],
        n=args.n,
        repeats=args.r,
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
