#!/usr/bin/env python
"""Every comparative benchmark of recompyle in one run, printed as tables of ratios.

    bash benches/setup_bench_env.sh          # once: .venv-bench with the comparison tools
    .venv-bench/bin/python benches/run_all.py [--quick] [--only SECTION,...] [--json FILE]

Sections (see benches/README.md): ``calls`` (per-call cost against cProfile, viztracer,
pyinstrument, recompyle 0.4.1's ``wrap_calls`` and pyccolo), ``imports`` (cold and warm import
of a large module set, plain / ours / pyccolo / typeguard), ``suite`` (a real package's test
suite plain, instrumented, profiled, under cProfile), ``transform`` (the Rust crate's
throughput on the stdlib, and whether the GIL is released while transforming), ``memory``
(RSS over 10 million instrumented calls). Every ratio is against a baseline measured in the
same run, interleaved with it; the issue's targets are printed PASS/FAIL at the end. The
exit status is 0 unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SECTIONS = ["calls", "imports", "suite", "transform", "memory"]
DEFAULT_041 = os.path.join(ROOT, ".venv-bench", "recompyle-0.4.1")
DEFAULT_CORPUS = os.path.join(ROOT, "target", "bench-env", "corpus")
WORKLOAD_LABELS = {
    "call": "f(i)",
    "kwcall": "g(i, k=1)",
    "method": "obj.m(i)",
    "builtin": "len(x)",
}


def _env(**extra: str) -> dict[str, str]:
    """The environment of every worker: no recompyle selection, bytecode writing on."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_")
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONPYCACHEPREFIX")
    }
    env.update(extra)
    return env


def _worker(args: list[str], timeout: float = 1800, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(args[:3])} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append(
            "  ".join(
                str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))
            )
        )
    return "\n".join(out)


def _say(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- 1. calls


def section_calls(args, results: dict) -> None:
    n, r = (50_000, 3) if args.quick else (200_000, 7)
    fams: dict = {}
    for fam in ("ours", "recompyle041", "pyccolo"):
        extra = {"PYTHONPATH": args.recompyle041} if fam == "recompyle041" else {}
        try:
            fams[fam] = _worker(
                [
                    os.path.join(HERE, "calls_worker.py"),
                    "--family",
                    fam,
                    "-n",
                    str(n),
                    "-r",
                    str(r),
                ],
                **extra,
            )
        except (RuntimeError, json.JSONDecodeError) as exc:
            _say(f"  ({fam}: not measured: {exc})")
    results["calls"] = fams
    ours = fams.get("ours")
    if ours is None:
        return
    two = ours["two_noop_calls_ns"]
    cols: list[tuple[str, str, str, float]] = [
        ("no handler", "ours", "instr", 0.0),
        ("handler net", "ours", "handler", two),
        ("profiler", "ours", "profiler", 0.0),
        ("cProfile", "ours", "cprofile", 0.0),
        ("viztracer", "ours", "viztracer", 0.0),
        ("pyinstrument", "ours", "pyinstrument", 0.0),
        ("rcp 0.4.1 wrap_calls", "recompyle041", "wrap_calls", 0.0),
        ("pyccolo", "pyccolo", "pyccolo", 0.0),
    ]
    cols = [c for c in cols if c[1] in fams and c[2] in fams[c[1]]["ns_per_call"]]
    rows = []
    added: dict = {}
    for w, label in WORKLOAD_LABELS.items():
        row = [label, f"{ours['ns_per_call']['plain'][w]:.0f} ns"]
        for name, fam, cfg, minus in cols:
            per = fams[fam]["ns_per_call"]
            plus = per[cfg][w] - per["plain"][w] - minus
            ratio = per[cfg][w] / per["plain"][w]
            added.setdefault(name, {})[w] = plus
            row.append(f"+{plus:.0f} ({ratio:.1f}x)" if plus >= 0 else f"{plus:.0f} ({ratio:.1f}x)")
        rows.append(row)
    results["calls_added_ns"] = added
    _say(_table(["call", "plain", *[c[0] for c in cols]], rows))
    _say(
        f"  ns added per call vs plain code timed in the same process (each tool family in its"
        f" own process), (x) = time per call / plain; min of {r} x {n} iterations, empty loop"
        f" subtracted.\n  'handler net' = no-op Python before+after handler minus the cost of"
        f" two plain calls of a no-op function ({two:.0f} ns): what the event machinery adds."
    )
    _say(
        "  versions: "
        + ", ".join(f"{k} {v}" for f in fams.values() for k, v in f["versions"].items())
    )


# --------------------------------------------------------------------------- 2. imports


def _clear_pycache(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, "**", "__pycache__"), recursive=True):
        shutil.rmtree(path)


def _our_cache_state(directory: str) -> dict[str, int]:
    return {
        p: os.stat(p).st_mtime_ns
        for p in glob.glob(os.path.join(directory, "**", "*.recompyle-*.pyc"), recursive=True)
    }


def section_imports(args, results: dict) -> None:
    repeats = 3 if args.quick else 5
    tools = ["plain", "ours", "pyccolo", "typeguard"]
    worker = os.path.join(HERE, "imports_worker.py")
    with tempfile.TemporaryDirectory(prefix="recompyle_imports_") as directory:
        made = _worker([worker, "--make", directory])
        times: dict = {t: {"cold": [], "warm": []} for t in tools}
        errors: dict = {}
        for rep in range(repeats):
            for tool in tools[rep % len(tools) :] + tools[: rep % len(tools)]:
                if tool in errors:
                    continue
                _clear_pycache(directory)
                try:
                    times[tool]["cold"].append(_worker([worker, "--tool", tool, directory])["ns"])
                    before = _our_cache_state(directory)
                    warm = _worker([worker, "--tool", tool, directory])
                    times[tool]["warm"].append(warm["ns"])
                except RuntimeError as exc:
                    errors[tool] = str(exc).splitlines()[-1]
                    continue
                if tool == "ours":
                    if len(before) != len(made["modules"]) or _our_cache_state(directory) != before:
                        raise SystemExit(
                            "imports: the warm run did not read every module from the cache"
                        )
    results["imports"] = {"ns": times, "errors": errors, "modules": len(made["modules"])}
    plain = {k: min(times["plain"][k]) for k in ("cold", "warm")}
    rows = []
    ratios: dict = {}
    for tool in tools:
        row = [tool]
        for kind in ("cold", "warm"):
            if times[tool][kind]:
                best = min(times[tool][kind])
                ratios.setdefault(tool, {})[kind] = best / plain[kind]
                row += [f"{best / 1e6:.1f} ms", f"{best / plain[kind]:.2f}x"]
            else:
                row += ["-", "-"]
        rows.append(row)
    results["imports"]["ratios"] = ratios
    _say(_table(["hook", "cold", "x plain", "warm", "x plain"], rows))
    _say(
        f"  importing {len(made['modules'])} modules (stdlib typing, argparse, ast, email.*, json.*"
        f" copied as package benchlib), fresh process per run, min of {repeats}; cold = no"
        f" __pycache__ (each tool writes its own cache), warm = the cold run's caches in place."
        f"\n  ours and pyccolo instrument every call (pyccolo: no-op before/after call handlers);"
        f" typeguard instruments every module but benchlib.typing (its checks of the copied"
        f" typing module fail at import)."
    )
    for tool, message in errors.items():
        _say(f"  {tool}: failed: {message}")


# --------------------------------------------------------------------------- 3. suite


def _suite_dir(corpus: str, name: str) -> str | None:
    found = sorted(glob.glob(os.path.join(corpus, "run", name, "*", "")))
    return found[0] if found else None


SUITES = {
    # name: (import names, pytest args as corpus.tsv has them)
    "cachetools": (["cachetools"], ["tests"]),
    "more-itertools": (
        ["more_itertools"],
        ["tests", "--deselect", "tests/test_recipes.py::PrimeFunctionTests::test_primes"],
    ),
}


def section_suite(args, results: dict) -> None:
    repeats = 2 if args.quick else 3
    results["suite"] = {}
    for name in args.suites.split(","):
        imports, pytest_args = SUITES[name]
        run_dir = _suite_dir(args.corpus, name)
        if run_dir is None:
            _say(f"  {name}: no test copy under {args.corpus}/run (run benches/setup_bench_env.sh)")
            continue
        selection = ",".join(f"{m},{m}.*" for m in imports)
        report = os.path.join(tempfile.gettempdir(), f"recompyle-suite-{os.getpid()}.json")
        prof = os.path.join(tempfile.gettempdir(), f"recompyle-suite-{os.getpid()}.prof")
        base = [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
        configs = {
            "plain": (base, {}),
            "instrumented": (base, {"RECOMPYLE_MODULES": selection}),
            "instrumented+profiler": (
                base,
                {"RECOMPYLE_MODULES": selection, "RECOMPYLE_OUTPUT": report},
            ),
            "cProfile": ([sys.executable, "-P", "-m", "cProfile", "-o", prof, *base[2:]], {}),
        }
        times: dict = {c: [] for c in configs}
        outcome: dict = {}
        for rep in range(repeats + 1):  # the first round warms the caches, untimed
            names = list(configs)
            for c in names[rep % len(names) :] + names[: rep % len(names)]:
                cmd, extra = configs[c]
                t0 = time.perf_counter()
                proc = subprocess.run(
                    cmd,
                    cwd=run_dir,
                    env=_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONHASHSEED="0", **extra),
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    timeout=1800,
                )
                elapsed = time.perf_counter() - t0
                summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
                outcome[c] = re.sub(r" in [\d.]+s.*", "", summary.strip("= "))
                if rep:
                    times[c].append(elapsed)
        calls = "?"
        if os.path.exists(report):
            with open(report) as fh:
                calls = f"{sum(s['calls'] for s in json.load(fh)['sites']):,}"
            os.unlink(report)
        if os.path.exists(prof):
            os.unlink(prof)
        plain = min(times["plain"])
        rows = [
            [c, f"{min(t):.2f} s", f"{min(t) / plain:.2f}x", outcome[c]] for c, t in times.items()
        ]
        results["suite"][name] = {
            "seconds": times,
            "ratios": {c: min(t) / plain for c, t in times.items()},
            "outcome": outcome,
            "profiled_calls": calls,
        }
        _say(f"{name} ({run_dir}):")
        _say(_table(["run", "wall time", "x plain", "pytest says"], rows))
        _say(
            f"  whole pytest process, min of {repeats} after one warm-up round (caches written);"
            f" the profiled run recorded {calls} calls."
        )
        if len(set(outcome.values())) != 1:
            _say("  WARNING: the test outcomes differ between runs")


# --------------------------------------------------------------------------- 4. transform


def _gil_check() -> dict:
    """How much a pure-Python thread gets done while another thread transforms, against
    alone: near 100% when the transform releases the GIL (2+ cores), near 0 when it holds it."""
    import sysconfig

    from recompyle import _core

    with open(os.path.join(sysconfig.get_paths()["stdlib"], "typing.py"), "rb") as fh:
        big = fh.read() * 40  # ~5 MB: one transform takes a good fraction of a second
    version = sys.version_info[:2]

    def spin(seconds: float) -> int:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            count += 1
        return count

    def transform_loop(stop: threading.Event, done: list) -> None:
        while not stop.is_set():
            _core.transform(big, "big.py", version)
            done[0] += 1

    alone = spin(0.5)
    stop, done = threading.Event(), [0]
    t = threading.Thread(target=transform_loop, args=(stop, done))
    t.start()
    time.sleep(0.05)
    together = spin(0.5)
    stop.set()
    t.join()
    return {
        "spin_alone": alone,
        "spin_while_transforming": together,
        "transforms": done[0],
        "ratio": together / alone,
    }


def section_transform(args, results: dict) -> None:
    cmd = [
        "cargo",
        "bench",
        "--quiet",
        "-p",
        "recompyle_transform",
        "--bench",
        "throughput",
        "--",
        "--python",
        sys.executable,
    ]
    if args.quick:
        cmd += ["--passes", "3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        _say(f"  cargo bench failed: {proc.stderr.strip()[-500:]}")
        return
    for line in proc.stdout.strip().splitlines():
        if line.startswith("throughput_mb_s="):
            results["transform_mb_s"] = float(line.split("=", 1)[1])
        else:
            _say("  " + line)
    gil = _gil_check()
    results["gil"] = gil
    _say(
        f"  GIL while transforming: a Python thread ran at {100 * gil['ratio']:.0f}% of its solo"
        f" speed while another thread made {gil['transforms']} transforms of a 5 MB module"
        f" ({'released' if gil['ratio'] > 0.5 else 'HELD'}; {os.cpu_count()} CPUs)"
    )


# --------------------------------------------------------------------------- 5. memory


def section_memory(args, results: dict) -> None:
    calls = 2_000_000 if args.quick else 10_000_000
    step = calls // 10
    rows = []
    results["memory"] = {}
    for mode in ("none", "profiler", "handler"):
        out = _worker(
            [
                os.path.join(HERE, "memory_worker.py"),
                "--mode",
                mode,
                "--calls",
                str(calls),
                "--step",
                str(step),
            ]
        )
        rss = out["rss"]
        growth = rss[-1][1] - rss[0][1]
        results["memory"][mode] = {"rss": rss, "growth_bytes": growth}
        rows.append(
            [
                mode,
                f"{rss[0][1] / 2**20:.1f} MiB",
                f"{rss[-1][1] / 2**20:.1f} MiB",
                f"{growth / 1024:+.0f} KiB",
                f"{growth / (calls - step):.4f}",
            ]
        )
    _say(
        _table(
            ["listening", f"RSS after {step:,}", f"after {calls:,}", "growth", "bytes/call"], rows
        )
    )
    _say(
        "  calls of f(i) from instrumented code, every tenth raising ValueError (caught);"
        " RSS read from /proc/self/statm after a gc.collect() each step."
    )


# --------------------------------------------------------------------------- targets


def targets(results: dict) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    added = results.get("calls_added_ns")
    if added:
        for name, limit, rows in (
            ("no handler <= +10 ns per plain function call", 10, ["call"]),
            ("no handler <= +40 ns per method call", 40, ["method"]),
            ("profiler <= +40 ns per call", 40, list(WORKLOAD_LABELS)),
            (
                "Python before+after handler <= +50 ns beyond its two calls",
                50,
                list(WORKLOAD_LABELS),
            ),
        ):
            col = {"no": "no handler", "pr": "profiler", "Py": "handler net"}[name[:2]]
            worst = max(rows, key=lambda w: added[col][w])
            value = added[col][worst]
            out.append((name, value <= limit, f"worst {WORKLOAD_LABELS[worst]} +{value:.0f} ns"))
    imports = results.get("imports", {}).get("ratios", {}).get("ours")
    if imports:
        out.append(("cold import <= 1.3x plain", imports["cold"] <= 1.3, f"{imports['cold']:.2f}x"))
        out.append(
            ("warm import <= 1.05x plain", imports["warm"] <= 1.05, f"{imports['warm']:.2f}x")
        )
    for name, suite in results.get("suite", {}).items():
        ratio = suite["ratios"]["instrumented+profiler"]
        out.append((f"{name} suite under our profiler <= 1.5x", ratio <= 1.5, f"{ratio:.2f}x"))
    if "transform_mb_s" in results:
        mbs = results["transform_mb_s"]
        out.append(("transform >= 80 MB/s single-threaded", mbs >= 80, f"{mbs:.1f} MB/s"))
    if "gil" in results:
        ratio = results["gil"]["ratio"]
        out.append(
            ("GIL released while transforming", ratio > 0.5, f"other thread at {100 * ratio:.0f}%")
        )
    for mode, mem in results.get("memory", {}).items():
        growth = mem["growth_bytes"]
        out.append(
            (f"RSS flat over the calls ({mode})", growth < 1 << 20, f"{growth / 1024:+.0f} KiB")
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and calls (~2 min)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target fails")
    ap.add_argument(
        "--recompyle041", default=DEFAULT_041, help="pip --target dir of recompyle 0.4.1"
    )
    ap.add_argument("--corpus", default=DEFAULT_CORPUS, help="corpus --work dir with test copies")
    ap.add_argument(
        "--suites",
        default="cachetools",
        help="comma-separated: cachetools (~2 s a run), more-itertools (~25 s a run)",
    )
    args = ap.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    import recompyle

    _say(
        f"recompyle {recompyle.__version__} benchmarks: Python {sys.version.split()[0]}"
        f" ({sys.executable}), {platform.machine()}, {os.cpu_count()} CPUs"
        f"{', quick' if args.quick else ''}"
    )
    results: dict = {"python": sys.version, "quick": args.quick}
    titles = {
        "calls": "1. Per-call cost",
        "imports": "2. Import cost",
        "suite": "3. A real test suite, end to end",
        "transform": "4. Transform throughput (Rust, single thread)",
        "memory": "5. Memory over many instrumented calls",
    }
    funcs = {
        "calls": section_calls,
        "imports": section_imports,
        "suite": section_suite,
        "transform": section_transform,
        "memory": section_memory,
    }
    t_all = time.perf_counter()
    for section in SECTIONS:
        if section in wanted:
            _say(f"\n## {titles[section]}\n")
            t0 = time.perf_counter()
            funcs[section](args, results)
            _say(f"  ({time.perf_counter() - t0:.0f} s)")
    checks = targets(results)
    results["targets"] = [{"target": n, "pass": ok, "value": v} for n, ok, v in checks]
    _say("\n## Targets\n")
    for name, ok, value in checks:
        _say(f"  [{'PASS' if ok else 'FAIL'}] {name:<58} {value}")
    _say(f"\n(total {time.perf_counter() - t_all:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, sort_keys=True)
    return 1 if args.check and not all(ok for _, ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
