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
same run, interleaved with it. Every run's exit status is checked (and a test suite's counts
against the plain run's): a run that fails makes its section fail to measure, never a better
ratio. The targets (``targets.py``, the one definition every bench uses) are printed PASS/FAIL
at the end, issue 20's three first (warm import, idle call, cold import). The exit status is 1
when a section failed to measure, or with ``--check`` when a target fails; 0 otherwise.
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

import targets as T

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


class SectionFailed(Exception):
    """A section could not measure what it exists to measure (our run or its baseline failed):
    run_all exits 1."""


class NotInstalled(RuntimeError):
    """A comparison tool is not installed in this environment: its column is left out."""


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
        what = f"{' '.join(os.path.basename(a) for a in args[:3])}"
        if "ModuleNotFoundError" in tail or "expected recompyle 0.4.1" in tail:
            raise NotInstalled(f"{what}: not installed ({tail.splitlines()[-1]})")
        raise RuntimeError(f"{what} exited {proc.returncode}: {tail}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise RuntimeError(f"{' '.join(args[:3])}: no JSON result ({exc})") from None


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
        except NotInstalled as exc:
            _say(f"  ({exc})")
        except RuntimeError as exc:
            if fam == "ours":
                raise SectionFailed(str(exc)) from None
            _say(f"  {fam}: FAILED, not measured: {exc}")
            results.setdefault("tool_failures", []).append(f"calls/{fam}: {exc}")
    results["calls"] = fams
    ours = fams["ours"]
    two = ours["two_noop_calls_ns"]
    # (column, family, configuration, ns of the tool's own Python calls to subtract)
    cols: list[tuple[str, str, str, float]] = [
        ("no handler", "ours", "instr", 0.0),
        ("handler gross", "ours", "handler", 0.0),
        ("handler net", "ours", "handler", two),
        ("profiler", "ours", "profiler", 0.0),
        ("cProfile", "ours", "cprofile", 0.0),
        ("viztracer", "ours", "viztracer", 0.0),
        ("pyinstrument", "ours", "pyinstrument", 0.0),
        ("rcp 0.4.1 wrap_calls gross", "recompyle041", "wrap_calls", 0.0),
        ("pyccolo gross", "pyccolo", "pyccolo", 0.0),
        ("pyccolo net", "pyccolo", "pyccolo", two),
    ]
    cols = [c for c in cols if c[1] in fams and c[2] in fams[c[1]]["ns_per_call"]]
    rows = []
    added: dict = {}
    for w, label in WORKLOAD_LABELS.items():
        row = [label, f"{ours['ns_per_call']['plain'][w]:.0f} ns"]
        for name, fam, cfg, minus in cols:
            per = fams[fam]["ns_per_call"]
            plus = per[cfg][w] - per["plain"][w] - minus
            ratio = (per[cfg][w] - minus) / per["plain"][w]
            added.setdefault(name, {})[w] = plus
            row.append(f"{plus:+.1f} ({ratio:.2f}x)")
        rows.append(row)
    results["calls_added_ns"] = added
    _say(_table(["call", "plain", *[c[0] for c in cols]], rows))
    _say(
        f"  ns added per call vs plain code timed in the same process (each tool family in its"
        f" own process), (x) = time per call / plain; min of {r} x {n} iterations, empty loop"
        f" subtracted.\n  Every column is gross (all the tool costs a call) except 'net':"
        f" minus the cost of two plain calls of a no-op Python function ({two:.0f} ns, timed"
        f" in each family's process), i.e. what the event machinery adds beyond the two Python"
        f" handler calls (ours: before+after; pyccolo: before_call+after_call). The profilers"
        f" call no Python code per call: gross is all they have. rcp 0.4.1's no-op wrapper is"
        f" one Python call that makes the call itself."
    )
    spread = ours.get("spread", {})
    if spread:
        worst = max((v, c, w) for c, per in spread.items() for w, v in per.items())
        _say(
            f"  spread (median - min over the repeats), worst cell: {worst[0]:.1f} ns"
            f" ({worst[1]}, {WORKLOAD_LABELS[worst[2]]})"
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


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def section_imports(args, results: dict) -> None:
    repeats = args.import_repeats or (3 if args.quick else 7)
    tools = ["plain", "ours", "pyccolo", "typeguard"]
    worker = os.path.join(HERE, "imports_worker.py")
    expected_loader = {"plain": "SourceFileLoader", "ours": "RecompyleLoader"}
    with tempfile.TemporaryDirectory(prefix="recompyle_imports_") as directory:
        made = _worker([worker, "--make", directory])
        count = len(made["modules"])
        times: dict = {t: {k: [] for k in ("cold", "warm", "cold_cpu", "warm_cpu")} for t in tools}
        errors: dict = {}

        def run(tool: str) -> dict:
            out = _worker([worker, "--tool", tool, directory])
            loader = expected_loader.get(tool)
            if loader and out["loaders"] != {loader: count}:
                raise RuntimeError(f"{count} modules expected from {loader}: {out['loaders']}")
            return out

        for rep in range(repeats):
            for tool in tools[rep % len(tools) :] + tools[: rep % len(tools)]:
                if tool in errors:
                    continue
                _clear_pycache(directory)
                try:
                    cold = run(tool)
                    before = _our_cache_state(directory)
                    warm = run(tool)
                except NotInstalled as exc:
                    errors[tool] = str(exc)
                    continue
                except RuntimeError as exc:
                    if tool in expected_loader:
                        raise SectionFailed(f"imports/{tool}: {exc}") from None
                    errors[tool] = f"FAILED: {str(exc).splitlines()[-1]}"
                    results.setdefault("tool_failures", []).append(f"imports/{tool}: {exc}")
                    continue
                if tool == "ours" and (
                    len(before) != count or _our_cache_state(directory) != before
                ):
                    raise SectionFailed(
                        "imports: the warm run did not read every module from the cache"
                    )
                for kind, out in (("cold", cold), ("warm", warm)):
                    times[tool][kind].append(out["ns"])
                    times[tool][kind + "_cpu"].append(out["cpu_ns"])
    results["imports"] = {"ns": times, "errors": errors, "modules": count}
    best = {t: {k: min(v) for k, v in kinds.items() if v} for t, kinds in times.items()}
    rows = []
    ratios: dict = {}
    for tool in tools:
        row = [tool]
        for kind in ("cold", "warm"):
            if times[tool][kind]:
                ratio = best[tool][kind] / best["plain"][kind]
                cpu_ratio = best[tool][kind + "_cpu"] / best["plain"][kind + "_cpu"]
                med = _median(times[tool][kind]) / _median(times["plain"][kind])
                ratios.setdefault(tool, {})[kind] = ratio
                ratios[tool][kind + "_cpu"] = cpu_ratio
                ratios[tool][kind + "_median"] = med
                row += [
                    f"{best[tool][kind] / 1e6:.1f} ms",
                    f"{ratio:.2f}x",
                    f"{med:.2f}x",
                    f"{cpu_ratio:.2f}x",
                ]
            else:
                row += ["-", "-", "-", "-"]
        rows.append(row)
    results["imports"]["ratios"] = ratios
    headers = [
        "hook",
        "cold (min)",
        "x plain",
        "median",
        "cpu",
        "warm (min)",
        "x plain",
        "median",
        "cpu",
    ]
    _say(_table(headers, rows))
    _say(
        f"  importing {count} modules (stdlib typing, argparse, ast, email.*, json.*"
        f" copied as package benchlib), a fresh process per import, {repeats} rounds (tool order"
        f" rotated); cold = no __pycache__ (each tool writes its own cache), warm = the cold"
        f" run's caches in place. 'x plain': min over min; 'median': median over median;"
        f" 'cpu': the importing thread's CPU time, min over min (less sensitive to a loaded"
        f" machine). Each run's loaders are checked (plain: {count} SourceFileLoader, ours:"
        f" {count} RecompyleLoader, and our warm run rewrote no cache file)."
        f"\n  ours and pyccolo instrument every call (pyccolo: no-op before/after call handlers);"
        f" typeguard instruments every module but benchlib.typing (its checks of the copied"
        f" typing module fail at import)."
    )
    for tool, message in errors.items():
        _say(f"  {tool}: {message}")


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


def _counts(summary: str) -> dict[str, int]:
    """pytest's closing line as counts: ``{"passed": 40, "skipped": 2}``."""
    found = re.findall(r"(\d+) (\w+)", summary)
    return {kind: int(num) for num, kind in found if not kind.startswith("warning")}


def section_suite(args, results: dict) -> None:
    repeats = 2 if args.quick else 3
    results["suite"] = {}
    for name in args.suites.split(","):
        imports, pytest_args = SUITES[name]
        run_dir = _suite_dir(args.corpus, name)
        if run_dir is None:
            raise SectionFailed(
                f"{name}: no test copy under {args.corpus}/run (run benches/setup_bench_env.sh)"
            )
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
                said = re.sub(r" in [\d.]+s.*", "", summary.strip("= "))
                if proc.returncode not in (0, 1) or not _counts(said):
                    # 0: all passed, 1: some failed (compared below); anything else is a
                    # crash, an interrupted run or a usage error: nothing was measured.
                    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                    raise SectionFailed(f"suite {name}/{c} exited {proc.returncode}: {tail}")
                if outcome.setdefault(c, (proc.returncode, said)) != (proc.returncode, said):
                    raise SectionFailed(f"suite {name}/{c}: '{said}', then '{outcome[c][1]}'")
                if rep:
                    times[c].append(elapsed)
        if not os.path.exists(report):
            raise SectionFailed(f"suite {name}: the profiled run wrote no report ({report})")
        with open(report) as fh:
            calls = f"{sum(s['calls'] for s in json.load(fh)['sites']):,}"
        os.unlink(report)
        if os.path.exists(prof):
            os.unlink(prof)
        for c, (status, said) in outcome.items():
            if (status, _counts(said)) != (outcome["plain"][0], _counts(outcome["plain"][1])):
                raise SectionFailed(
                    f"suite {name}: '{c}' says '{said}' (exit {status}), plain says"
                    f" '{outcome['plain'][1]}' (exit {outcome['plain'][0]}): not comparable"
                )
        plain = min(times["plain"])
        rows = [
            [c, f"{min(t):.2f} s", f"{min(t) / plain:.2f}x", outcome[c][1]]
            for c, t in times.items()
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
        _say("  every run exited as plain did with the same test counts (checked).")


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
        raise SectionFailed(f"cargo bench exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
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


Check = tuple[T.Target, float, str]


def done_when(results: dict) -> list[Check]:
    """Issue 20's three rows: warm import, idle call site, cold import."""
    out: list[Check] = []
    imports = results.get("imports", {}).get("ratios", {}).get("ours")
    if imports:
        w, c = imports["warm"], imports["cold"]
        detail = f"{w:.2f}x (median {imports['warm_median']:.2f}x, cpu {imports['warm_cpu']:.2f}x)"
        out.append((T.WARM_IMPORT, w, detail))
    added = results.get("calls_added_ns", {}).get("no handler")
    if added:
        worst = max(("call", "kwcall", "builtin"), key=lambda w: added[w])
        out.append(
            (T.IDLE_CALL, added[worst], f"worst {WORKLOAD_LABELS[worst]} {added[worst]:+.1f} ns")
        )
        out.append((T.IDLE_METHOD, added["method"], f"obj.m(i) {added['method']:+.1f} ns"))
    if imports:
        detail = f"{c:.2f}x (median {imports['cold_median']:.2f}x, cpu {imports['cold_cpu']:.2f}x)"
        out.append((T.COLD_IMPORT, c, detail))
    return out


def other_targets(results: dict) -> list[Check]:
    out: list[Check] = []
    added = results.get("calls_added_ns")
    if added:
        for target, col in ((T.PROFILER, "profiler"), (T.HANDLER_NET, "handler net")):
            worst = max(WORKLOAD_LABELS, key=lambda w: added[col][w])
            value = added[col][worst]
            out.append((target, value, f"worst {WORKLOAD_LABELS[worst]} {value:+.1f} ns"))
    for name, suite in results.get("suite", {}).items():
        ratio = suite["ratios"]["instrumented+profiler"]
        out.append((T.SUITE_PROFILED, ratio, f"{name}: {ratio:.2f}x"))
    if "transform_mb_s" in results:
        mbs = results["transform_mb_s"]
        out.append((T.TRANSFORM_SPEED, mbs, f"{mbs:.1f} MB/s"))
    if "gil" in results:
        ratio = results["gil"]["ratio"]
        out.append((T.GIL_RELEASED, ratio, f"other thread at {100 * ratio:.0f}%"))
    for mode, mem in results.get("memory", {}).items():
        growth = mem["growth_bytes"]
        out.append((T.RSS_FLAT, growth / 2**20, f"{mode}: {growth / 1024:+.0f} KiB"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and calls (~2 min)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target fails")
    ap.add_argument(
        "--import-repeats", type=int, default=0, help="rounds of the imports section (7; quick 3)"
    )
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
    failed: dict[str, str] = {}
    for section in SECTIONS:
        if section in wanted:
            _say(f"\n## {titles[section]}\n")
            t0 = time.perf_counter()
            try:
                funcs[section](args, results)
            except (SectionFailed, RuntimeError, subprocess.TimeoutExpired) as exc:
                failed[section] = str(exc)
                _say(f"  FAILED TO MEASURE: {exc}")
            _say(f"  ({time.perf_counter() - t0:.0f} s)")
    results["failed_sections"] = failed
    first, rest = done_when(results), other_targets(results)
    results["targets"] = [
        {"target": t.name, "limit": t.limit, "value": v, "pass": t.met(v), "detail": d}
        for t, v, d in first + rest
    ]
    if {"imports", "calls"} & set(wanted):
        _say("\n## Issue 20, done when (targets.py)\n")
        for t, _v, detail in first:
            _say(f"  [{t.verdict(_v)}] {t.name:<58} {detail}")
        missing = 4 - len(first)
        if missing:
            _say(f"  ({missing} row(s) not measured: run --only calls,imports)")
    _say("\n## Other targets (targets.py)\n")
    for t, value, detail in rest:
        _say(f"  [{t.verdict(value)}] {t.name:<58} {detail}")
    for message in results.get("tool_failures", []):
        _say(f"  a comparison tool failed: {message.splitlines()[0]}")
    for section, message in failed.items():
        _say(f"  [FAILED TO MEASURE] {section}: {message.splitlines()[0]}")
    _say(f"\n(total {time.perf_counter() - t_all:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, sort_keys=True)
    if failed:
        return 1
    return 1 if args.check and not all(t.met(v) for t, v, _ in first + rest) else 0


if __name__ == "__main__":
    sys.exit(main())
