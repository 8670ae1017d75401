#!/usr/bin/env python3
"""Driver behind run_corpus.sh: install a corpus of real-world pure-Python
packages from their PyPI sdists into a venv and run each package's own test
suite with pytest against the INSTALLED copy, optionally wrapped in an
instrumentation prefix / environment.  Standard library only.

See README.md next to this file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# corpus.tsv
# --------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    version: str
    tier: str
    imports: list[str]
    test_deps: list[str]
    remove: list[str]
    pytest_args: str

    @property
    def key(self) -> str:
        return norm(self.name)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def split_list(cell: str) -> list[str]:
    cell = cell.strip()
    if cell in ("", "-"):
        return []
    return [c.strip() for c in cell.split(",") if c.strip()]


def load_corpus(path: str) -> list[Row]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = line.split("\t")
            if cells[0] == "name":  # header
                continue
            if len(cells) != 7:
                sys.exit(f"{path}:{lineno}: expected 7 tab-separated columns, got {len(cells)}")
            name, version, tier, imports, deps, remove, args = cells
            rows.append(
                Row(
                    name,
                    version,
                    tier,
                    split_list(imports),
                    split_list(deps),
                    split_list(remove),
                    args.strip(),
                )
            )
    return rows


# --------------------------------------------------------------------------
# templating: {pkg} {pkgs} {globs} {name} {version} {site} {python} {results}
#             {each|TEMPLATE|SEP}  (TEMPLATE with % = each import name)
# --------------------------------------------------------------------------

_EACH = re.compile(r"\{each\|([^|}]*)\|([^|}]*)\}")


def expand(s: str, row: Row | None, ctx: dict, quote: bool = False) -> str:
    """Expand templates; with quote=True (strings that get shell-split) path values are quoted."""
    if row is not None:
        s = _EACH.sub(lambda m: m.group(2).join(m.group(1).replace("%", n) for n in row.imports), s)
        s = (
            s.replace("{pkg}", row.imports[0])
            .replace("{pkgs}", ",".join(row.imports))
            .replace("{globs}", ",".join(n + ".*" for n in row.imports))
            .replace("{name}", row.name)
            .replace("{version}", row.version)
        )
    for k, v in ctx.items():
        s = s.replace("{" + k + "}", shlex.quote(v) if quote else v)
    return s


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_logged(cmd: list[str], logf, **kw) -> int:
    logf.write("\n$ " + shlex.join(cmd) + "\n")
    logf.flush()
    p = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    return p.returncode


def extract(archive: str, dest: str) -> str:
    """Extract a sdist into a fresh `dest`; return the path of its top directory."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            try:
                t.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters
                t.extractall(dest)
    entries = os.listdir(dest)
    if len(entries) == 1 and os.path.isdir(os.path.join(dest, entries[0])):
        return os.path.join(dest, entries[0])
    return dest


def py_eval(python: str, code: str, cwd: str | None = None, env=None) -> str:
    return subprocess.run(
        [python, "-P", "-c", code], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


# --------------------------------------------------------------------------
# pytest output parsing
# --------------------------------------------------------------------------

_SUMMARY = re.compile(
    r"\b(passed|failed|errors?|skipped|xfailed|xpassed|deselected|no tests ran)\b"
    r".* in \d+(?:\.\d+)?s\b"
)
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|deselected|xfailed|xpassed|errors?|warnings?)\b")


def parse_output(text: str) -> tuple[dict, list[str], str]:
    counts = dict(
        passed=0, failed=0, skipped=0, errors=0, xfailed=0, xpassed=0, deselected=0, warnings=0
    )
    summary = ""
    lines = text.splitlines()
    for line in reversed(lines):
        if _SUMMARY.search(line):
            summary = line.strip().strip("=").strip()
            for n, kind in _COUNT.findall(summary):
                kind = {"error": "errors", "warning": "warnings"}.get(kind, kind)
                counts[kind] += int(n)
            break
    failures = []
    in_short = False
    for line in lines:
        if "short test summary info" in line:
            in_short = True
            continue
        if in_short and re.match(r"^(FAILED|ERROR) ", line):
            rest = line.split(" ", 1)[1]
            nodeid = rest.split(" - ", 1)[0].strip()
            failures.append(line.split(" ", 1)[0] + " " + nodeid)
    return counts, sorted(set(failures)), summary


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="run_corpus.sh",
        description="Install the corpus packages from their PyPI sdists into a venv and run their "
        "test suites against the installed copies.",
        epilog="Templates ({pkg} {pkgs} {globs} {each|TPL|SEP} {name} {version} {site} {python} "
        "{results}) are expanded per package in --instrument-cmd, --env and --pytest-args.",
    )
    ap.add_argument(
        "--python",
        default=os.path.join(HERE, "venv", "bin", "python"),
        help="python of the venv to use (created if it is the default and missing); "
        "the corpus packages and test deps are installed there",
    )
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these packages (repeatable, or comma-separated)",
    )
    ap.add_argument("--all", action="store_true", help="also run the 'extra' tier")
    ap.add_argument(
        "--instrument-cmd",
        default="",
        metavar="PREFIX",
        help="run each suite as: PREFIX <python> -P -m pytest ... (PREFIX is templated)",
    )
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the pytest runs only (templated, repeatable), "
        "e.g. --env 'RECOMPYLE_MODULES={pkg}.*'",
    )
    ap.add_argument(
        "--pytest-args",
        action="append",
        default=[],
        metavar="ARGS",
        help="extra pytest arguments appended to every run (templated, shell-split), "
        "e.g. --pytest-args '-p recompyle.pytest_plugin'",
    )
    ap.add_argument(
        "--autoload-plugins",
        action="store_true",
        help="do NOT set PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 (default: autoload is off and "
        "each suite loads only the plugins listed in corpus.tsv)",
    )
    ap.add_argument(
        "--skip-install",
        action="store_true",
        help="do not download/build/install; only (re)extract the sdists and run tests",
    )
    ap.add_argument(
        "--results",
        default=None,
        metavar="DIR",
        help="results directory (default: results/run-TIMESTAMP, symlinked as results/latest)",
    )
    ap.add_argument(
        "--compare",
        default=None,
        metavar="DIR",
        help="baseline results dir; report tests that newly fail/error (exit 1 if any)",
    )
    ap.add_argument(
        "--work",
        default=os.path.join(HERE, "work"),
        metavar="DIR",
        help="scratch dir for sdists, builds, wheels and test copies",
    )
    ap.add_argument(
        "--timeout", type=float, default=1800, help="per-package pytest timeout in seconds"
    )
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus.tsv"))
    ap.add_argument("--constraints", default=os.path.join(HERE, "constraints.txt"))
    ap.add_argument("--list", action="store_true", help="print the selected corpus rows and exit")
    # values of these options may legitimately start with "-" (e.g. --pytest-args '-p foo')
    argv = list(sys.argv[1:] if argv is None else argv)
    fixed = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--pytest-args", "--instrument-cmd", "--env") and i + 1 < len(argv):
            fixed.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            fixed.append(argv[i])
            i += 1
    a = ap.parse_args(fixed)

    rows = load_corpus(a.corpus)
    only = {norm(x) for o in a.only for x in o.split(",") if x.strip()}
    if only:
        unknown = only - {r.key for r in rows} - {norm(r.imports[0]) for r in rows}
        if unknown:
            sys.exit(f"--only: unknown package(s): {', '.join(sorted(unknown))}")
        sel = [r for r in rows if r.key in only or norm(r.imports[0]) in only]
    else:
        sel = [r for r in rows if a.all or r.tier == "core"]

    if a.list:
        for r in sel:
            print(f"{r.name}\t{r.version}\t{r.tier}\t{','.join(r.imports)}\t{r.pytest_args}")
        return 0

    python = os.path.abspath(a.python) if os.sep in a.python else shutil.which(a.python) or a.python
    work = os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(python):
        default_py = os.path.join(HERE, "venv", "bin", "python")
        if os.path.abspath(python) != default_py:
            sys.exit(f"--python {python}: not found")
        log(f"== creating venv {os.path.dirname(os.path.dirname(python))}")
        subprocess.run(
            [sys.executable, "-m", "venv", os.path.dirname(os.path.dirname(python))], check=True
        )

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = os.path.abspath(a.results or os.path.join(HERE, "results", "run-" + stamp))
    os.makedirs(results, exist_ok=True)
    if a.results is None:
        latest = os.path.join(HERE, "results", "latest")
        if os.path.islink(latest):
            os.unlink(latest)
        if not os.path.exists(latest):
            os.symlink(os.path.basename(results), latest)

    pyver = py_eval(python, "import sys; print('%d.%d.%d' % sys.version_info[:3])")
    if not pyver.startswith("3.11."):
        log(f"WARNING: {python} is Python {pyver}; the corpus was validated on CPython 3.11.7")
    paths = py_eval(
        python, "import sysconfig as s; p=s.get_paths(); print(p['purelib']); print(p['platlib'])"
    ).split("\n")
    site = paths[0]
    site_dirs = {os.path.realpath(p) for p in paths}
    ctx = {"site": site, "python": python, "results": results}

    sdist_dir = os.path.join(work, "sdists")
    build_dir = os.path.join(work, "build")
    wheel_dir = os.path.join(work, "wheels")
    run_root = os.path.join(work, "run")
    for d in (sdist_dir, build_dir, wheel_dir, run_root):
        os.makedirs(d, exist_ok=True)

    # ------------------------------------------------------------- install
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    archives: dict[str, str] = {}
    with open(os.path.join(results, "install.log"), "a", encoding="utf-8") as ilog:
        for r in sel:
            d = os.path.join(sdist_dir, f"{r.key}-{r.version}")
            os.makedirs(d, exist_ok=True)
            have = [f for f in os.listdir(d) if f.endswith((".tar.gz", ".zip", ".tgz"))]
            if not have or not a.skip_install:
                log(f"== download {r.name}=={r.version} (sdist)")
                rc = run_logged(
                    pip
                    + [
                        "download",
                        "--no-binary",
                        ":all:",
                        "--no-deps",
                        "-d",
                        d,
                        f"{r.name}=={r.version}",
                    ],
                    ilog,
                )
                if rc:
                    sys.exit(f"pip download {r.name}=={r.version} failed; see {ilog.name}")
                have = [f for f in os.listdir(d) if f.endswith((".tar.gz", ".zip", ".tgz"))]
            if len(have) != 1:
                sys.exit(f"expected one sdist in {d}, found {have}")
            archives[r.key] = os.path.join(d, have[0])

        if not a.skip_install:
            # effective constraints: constraints.txt + every corpus row + every test dep pin
            pins: dict[str, str] = {}
            with open(a.constraints, encoding="utf-8") as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        pins[norm(re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0])] = line
            for r in rows:
                for dep in r.test_deps:
                    pins[norm(re.split(r"[=<>!~ ;\[]", dep, maxsplit=1)[0])] = dep
            for r in rows:
                pins[r.key] = f"{r.name}=={r.version}"
            cfile = os.path.join(results, "constraints.effective.txt")
            with open(cfile, "w", encoding="utf-8") as f:
                f.write("\n".join(pins[k] for k in sorted(pins)) + "\n")

            wheels = []
            for r in sel:
                tree = extract(archives[r.key], os.path.join(build_dir, f"{r.key}-{r.version}"))
                wd = os.path.join(wheel_dir, f"{r.key}-{r.version}")
                if os.path.exists(wd):
                    shutil.rmtree(wd)
                log(f"== build wheel {r.name}=={r.version} from the sdist")
                rc = run_logged(pip + ["wheel", "--no-deps", "-w", wd, tree], ilog)
                whls = (
                    [f for f in os.listdir(wd) if f.endswith(".whl")] if os.path.isdir(wd) else []
                )
                if rc or len(whls) != 1:
                    sys.exit(f"building a wheel for {r.name} failed; see {ilog.name}")
                wheels.append(os.path.join(wd, whls[0]))
            deps = sorted({d for r in sel for d in r.test_deps})
            log(f"== install {len(wheels)} packages + test deps into {python}")
            rc = run_logged(pip + ["install", "-c", cfile, "pytest"] + deps + wheels, ilog)
            if rc:
                sys.exit(f"pip install failed; see {ilog.name}")
            # make sure the sdist-built wheels (not same-version PyPI wheels pulled in as
            # deps) are installed
            rc = run_logged(pip + ["install", "--no-deps", "--force-reinstall"] + wheels, ilog)
            if rc:
                sys.exit(f"pip install --force-reinstall failed; see {ilog.name}")
            rc = run_logged(pip + ["check"], ilog)
            if rc:
                log(f"WARNING: pip check reported problems; see {ilog.name}")
        with open(os.path.join(results, "pip-freeze.txt"), "w", encoding="utf-8") as f:
            subprocess.run(pip + ["freeze", "--all"], stdout=f, stderr=subprocess.DEVNULL)

    # ------------------------------------------------------------- tests
    base_env = dict(os.environ)
    if not a.autoload_plugins:
        base_env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    base_env.setdefault("PYTHONHASHSEED", "0")
    extra_args_t = " ".join(a.pytest_args)

    with open(os.path.join(results, "run-info.txt"), "w", encoding="utf-8") as f:
        f.write(
            f"date: {_dt.datetime.now().isoformat(timespec='seconds')}\n"
            f"argv: {shlex.join(sys.argv)}\npython: {python} ({pyver})\nsite: {site}\n"
            f"packages: {' '.join(r.name + '==' + r.version for r in sel)}\n"
            f"autoload_plugins: {a.autoload_plugins}\n"
            f"instrument_cmd: {a.instrument_cmd!r}\nenv: {a.env!r}\n"
            f"pytest_args: {a.pytest_args!r}\n"
        )

    baseline = load_results(a.compare) if a.compare else None
    tot = dict(passed=0, failed=0, skipped=0, errors=0, secs=0.0)
    regressions = 0
    all_clean = True
    summary_rows = []
    for r in sel:
        run_dir = extract(archives[r.key], os.path.join(run_root, r.key))
        for rel in r.remove:
            p = os.path.join(run_dir, rel)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            elif os.path.lexists(p):
                os.unlink(p)
        # where do the import names resolve from inside the test dir? (no instrumentation here)
        chk = (
            "import importlib, importlib.metadata as md, os, sys\n"
            f"print(md.version({r.name!r}))\n"
            f"for n in {r.imports!r}:\n"
            "    m = importlib.import_module(n)\n"
            "    print(os.path.realpath(getattr(m, '__file__', None) or list(m.__path__)[0]))\n"
        )
        try:
            out = py_eval(
                python,
                chk,
                cwd=run_dir,
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            ).splitlines()
            inst_ver, files = out[0], out[1:]
            if inst_ver != r.version:
                log(f"WARNING: {r.name}: installed version {inst_ver} != corpus {r.version}")
            for fpath in files:
                if not any(fpath.startswith(s + os.sep) for s in site_dirs):
                    log(
                        f"WARNING: {r.name}: imports resolve to {fpath}, not the venv site-packages"
                    )
        except subprocess.CalledProcessError as e:
            log(f"WARNING: {r.name}: import check failed: {e.stderr.strip()[-500:]}")

        prefix = (
            shlex.split(expand(a.instrument_cmd, r, ctx, quote=True)) if a.instrument_cmd else []
        )
        junit = os.path.join(results, f"{r.key}.junit.xml")
        cmd = (
            prefix
            + [
                python,
                "-P",
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-rfE",
                f"--junitxml={junit}",
            ]
            + shlex.split(expand(r.pytest_args, r, ctx, quote=True))
            + shlex.split(expand(extra_args_t, r, ctx, quote=True))
        )
        env = dict(base_env)
        for kv in a.env:
            k, _, v = kv.partition("=")
            env[k] = expand(v, r, ctx)
        logpath = os.path.join(results, f"{r.key}.log")
        log(f"== test {r.name}=={r.version}: (cd {run_dir} && {shlex.join(cmd)})")
        t0 = time.monotonic()
        timed_out = False
        with open(logpath, "w", encoding="utf-8") as lf:
            lf.write(f"# cwd: {run_dir}\n# cmd: {shlex.join(cmd)}\n")
            if a.env:
                lf.write(
                    "# env: "
                    + " ".join(
                        f"{kv.partition('=')[0]}={env[kv.partition('=')[0]]}" for kv in a.env
                    )
                    + "\n"
                )
            lf.flush()
            p = subprocess.Popen(
                cmd,
                cwd=run_dir,
                env=env,
                stdout=lf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                rc = p.wait(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(p.pid, signal.SIGTERM)  # our own child's process group
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                rc = -9
        secs = time.monotonic() - t0
        with open(logpath, encoding="utf-8", errors="replace") as lf:
            text = lf.read()
        counts, failures, summary = parse_output(text)
        passed = counts["passed"] + counts["xpassed"]
        skipped = counts["skipped"] + counts["xfailed"]
        failed, errors = counts["failed"], counts["errors"]
        note = ""
        if timed_out:
            note = f"timed out after {a.timeout:.0f}s"
        elif rc not in (0, 1):
            meanings = {
                2: "interrupted / collection error",
                3: "internal error",
                4: "usage error",
                5: "no tests collected",
            }
            note = f"pytest exit code {rc} ({meanings.get(rc, 'crash')})"
        if note and errors == 0:
            errors = 1  # make an aborted run visible in the counts
        if rc != 0:
            all_clean = False
        with open(os.path.join(results, f"{r.key}.failures.txt"), "w", encoding="utf-8") as ff:
            ff.write("".join(x + "\n" for x in failures))
        print(
            f"{r.name} {r.version} passed={passed} failed={failed} skipped={skipped} "
            f"errors={errors} secs={secs:.1f}",
            flush=True,
        )
        if note:
            print(f"  !! {r.name}: {note}; see {logpath}", flush=True)
        for k, v in (
            ("passed", passed),
            ("failed", failed),
            ("skipped", skipped),
            ("errors", errors),
        ):
            tot[k] += v
        tot["secs"] += secs
        summary_rows.append(
            [
                r.name,
                r.version,
                passed,
                failed,
                skipped,
                errors,
                f"{secs:.1f}",
                rc,
                counts["xfailed"],
                counts["xpassed"],
                counts["deselected"],
                summary,
                shlex.join(cmd),
            ]
        )
        if baseline is not None:
            regressions += compare_one(r, baseline, passed, failed, errors, failures)

    print(
        f"TOTAL packages={len(sel)} passed={tot['passed']} failed={tot['failed']} "
        f"skipped={tot['skipped']} errors={tot['errors']} secs={tot['secs']:.1f}",
        flush=True,
    )
    with open(os.path.join(results, "summary.tsv"), "w", encoding="utf-8") as f:
        f.write(
            "name\tversion\tpassed\tfailed\tskipped\terrors\tsecs\trc\txfailed\txpassed\t"
            "deselected\tpytest_summary\tcmd\n"
        )
        for row in summary_rows:
            f.write("\t".join(str(c) for c in row) + "\n")
    log(f"== results in {results}")
    if baseline is not None:
        print(f"COMPARE vs {a.compare}: {regressions} package(s) regressed", flush=True)
        return 1 if regressions else 0
    return 0 if all_clean else 1


def load_results(d: str) -> dict:
    out = {}
    with open(os.path.join(d, "summary.tsv"), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rec = dict(zip(header, line.rstrip("\n").split("\t")))
            key = norm(rec["name"])
            fp = os.path.join(d, f"{key}.failures.txt")
            rec["failures"] = (
                set(open(fp, encoding="utf-8").read().split("\n")) - {""}
                if os.path.exists(fp)
                else set()
            )
            out[key] = rec
    return out


def compare_one(
    r: Row, baseline: dict, passed: int, failed: int, errors: int, failures: list[str]
) -> int:
    b = baseline.get(r.key)
    if b is None:
        print(f"  ?? {r.name}: not in baseline", flush=True)
        return 0
    new = sorted(set(failures) - b["failures"])
    fixed = sorted(b["failures"] - set(failures))
    bp, bf, be = int(b["passed"]), int(b["failed"]), int(b["errors"])
    regressed = bool(new) or failed + errors > bf + be or passed < bp
    if regressed:
        print(
            f"  REGRESSION {r.name}: passed {bp}->{passed} failed {bf}->{failed} "
            f"errors {be}->{errors}",
            flush=True,
        )
        for x in new[:50]:
            print(f"    NEW {x}", flush=True)
        if len(new) > 50:
            print(f"    ... {len(new) - 50} more (see the .failures.txt file)", flush=True)
    for x in fixed[:10]:
        print(f"    no longer failing: {x}", flush=True)
    return int(regressed)


if __name__ == "__main__":
    sys.exit(main())
