"""Child processes of a profiled run: profiled too, and merged into the one report.

Every test runs a real program under ``python -m recompyle run`` (or the environment route)
and checks call counts exactly: a worker site called 1000 times in each of 8 tasks must
show 8000 calls, whatever process ran which task."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

import recompyle

HELPER = """\
def f(x):
    return abs(x) + 1
"""

WORKMOD = """\
def work(i):
    return divmod(i, 7)[1]


def child_fn(n):
    total = 0
    for i in range(1000):
        total += work(i)
    return total
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMPYLE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, timeout: int = 120, **env: str):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(PYTHONPATH=str(cwd), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _profiled(cwd: Path, modules: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``prog.py`` (with ``args``) run under ``python -m recompyle run --modules MODULES -o
    rep.json``, in ``cwd``."""
    return _run(["-m", "recompyle", "run", "--modules", modules, "-o", "rep.json", "prog.py",
                 *args], cwd)  # fmt: skip


def _calls(report: Path, callee: str, file_end: str = "") -> int:
    doc = json.loads(report.read_text())
    return sum(
        row["calls"]
        for row in doc["sites"]
        if row["callee"] == callee and row["file"].endswith(file_end)
    )


@pytest.fixture
def prog(tmp_path: Path):
    (tmp_path / "helper.py").write_text(HELPER)
    (tmp_path / "workmod.py").write_text(WORKMOD)

    def write(source: str, name: str = "prog.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


POOL = """\
import multiprocessing as mp
import subprocess
import sys


def work(i):
    return abs(i) % 7


def child_fn(n):
    total = 0
    for i in range(1000):
        total += work(i)
    return total


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with ctx.Pool(2) as pool:
        print(sum(pool.map(child_fn, range(8))))
    code = "import helper; print(sum(helper.f(i) for i in range(500)))"
    print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
"""


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_pool_workers_and_a_subprocess_are_in_the_report(prog, tmp_path, method):
    prog(POOL)
    done = _profiled(tmp_path, "helper", method)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["23976", "125250"]
    report = tmp_path / "rep.json"
    assert _calls(report, "work", "prog.py") == 8000
    assert _calls(report, "abs", "helper.py") == 500
    doc = json.loads(report.read_text())
    assert doc["processes"] >= 3  # the top, at least one worker, the subprocess
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".recompyle-parts-")]


def test_process_pool_executor(prog, tmp_path):
    prog(
        """\
        from concurrent.futures import ProcessPoolExecutor
        import workmod

        if __name__ == "__main__":
            with ProcessPoolExecutor(2) as ex:
                print(sum(ex.map(workmod.child_fn, range(8))))
        """
    )
    done = _profiled(tmp_path, "workmod")
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path / "rep.json", "work") == 8000


def test_environment_route_profiles_children(prog, tmp_path):
    prog(
        """\
        import multiprocessing as mp
        import workmod

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(2) as pool:
                print(sum(pool.map(workmod.child_fn, range(8))))
        """
    )
    done = _run(["prog.py"], tmp_path, RECOMPYLE_MODULES="workmod", RECOMPYLE_OUTPUT="rep.json")
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path / "rep.json", "work") == 8000


def test_os_fork_child_starts_empty_and_is_merged(prog, tmp_path):
    prog(
        """\
        import os
        import workmod

        workmod.child_fn(0)                 # 1000 calls before the fork, in the parent
        pid = os.fork()
        if pid == 0:
            workmod.child_fn(0)             # 1000 in the child, which ends with os._exit
            os._exit(3)
        _, status = os.waitpid(pid, 0)
        workmod.child_fn(0)                 # 1000 more in the parent
        print(os.waitstatus_to_exitcode(status))
        """
    )
    done = _profiled(tmp_path, "workmod")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # os._exit's status is the child's own
    assert _calls(tmp_path / "rep.json", "work") == 3000


def test_sigterm_writes_the_part_and_keeps_the_signal(prog, tmp_path):
    prog(
        """\
        import os, signal, sys, time
        import workmod

        pid = os.fork()
        if pid == 0:
            workmod.child_fn(0)
            print("ready", flush=True)
            time.sleep(60)
            os._exit(0)
        time.sleep(1)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    done = _profiled(tmp_path, "workmod")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ready", str(-signal.SIGTERM)]
    assert _calls(tmp_path / "rep.json", "work") == 1000


def test_the_programs_own_sigterm_handler_still_runs(prog, tmp_path):
    prog(
        """\
        import os, signal, sys, time
        import workmod

        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, lambda s, f: (print("own handler", flush=True),
                                                        os._exit(7)))
            workmod.child_fn(0)
            time.sleep(60)
            os._exit(0)
        time.sleep(1)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    done = _profiled(tmp_path, "workmod")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["own", "handler", "7"]
    assert _calls(tmp_path / "rep.json", "work") == 1000


def test_parts_of_a_killed_run_are_combined(prog, tmp_path):
    """The top process dies by SIGKILL: its children's parts stay, and `combine` merges
    them."""
    prog(
        """\
        import multiprocessing as mp, os, signal
        import workmod

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(2) as pool:
                print(sum(pool.map(workmod.child_fn, range(8))))
                pool.close()
                pool.join()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = _profiled(tmp_path, "workmod")
    assert done.returncode == -signal.SIGKILL
    assert not (tmp_path / "rep.json").exists()
    (parts_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith(".recompyle-parts-")]
    parts = sorted(str(p) for p in parts_dir.glob("part-*.json"))
    assert len(parts) >= 2  # the two workers (and the resource tracker, empty)
    merged = _run(["-m", "recompyle", "combine", *parts, "-o", "all.json"], tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert _calls(tmp_path / "all.json", "work") == 8000


def _venv(path: Path, with_recompyle: bool) -> Path:
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if with_recompyle:
        package_parent = Path(recompyle.__file__).parent.parent
        (Path(site) / "recompyle_dev.pth").write_text(f"{package_parent}\n")
        startup = Path(package_parent) / "recompyle_startup.pth"
        if not startup.exists():  # an installed wheel: the .pth sits beside the package
            startup = next(Path(p) / "recompyle_startup.pth" for p in sys.path
                           if (Path(p) / "recompyle_startup.pth").exists())  # fmt: skip
        (Path(site) / "recompyle_startup.pth").write_text(startup.read_text())
    return python


def test_subprocesses_of_other_venvs(prog, tmp_path):
    with_r = _venv(tmp_path / "with", True)
    without = _venv(tmp_path / "without", False)
    prog(
        f"""\
        import subprocess
        code = "import helper; print(sum(helper.f(i) for i in range(100)))"
        for python in ({str(with_r)!r}, {str(without)!r}):
            print(subprocess.run([python, "-c", code], capture_output=True, text=True).stdout)
        """
    )
    done = _profiled(tmp_path, "helper")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5050", "5050"]
    # Only the venv with recompyle profiled its calls.
    assert _calls(tmp_path / "rep.json", "abs", "helper.py") == 100
    assert json.loads((tmp_path / "rep.json").read_text())["processes"] == 2


def test_top_process_ending_with_os_exit_still_writes_the_report(prog, tmp_path):
    prog(
        """\
        import os
        import workmod

        workmod.child_fn(0)
        print("bye", flush=True)
        os._exit(5)
        """
    )
    done = _profiled(tmp_path, "workmod")
    assert done.returncode == 5, done.stderr
    assert done.stdout == "bye\n"
    assert _calls(tmp_path / "rep.json", "work") == 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".recompyle-parts-")]


def test_a_pattern_only_a_child_matched_is_not_named(prog, tmp_path):
    """Only the subprocess imports helper: its part names it, and the top process warns
    about the pattern that matched nothing in any process (nosuchmod) alone."""
    prog(
        """\
        import subprocess, sys
        code = "import helper; print(helper.f(-2))"
        print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
        """
    )
    done = _profiled(tmp_path, "helper,nosuchmod")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3"]
    assert "'nosuchmod'" in done.stderr
    assert "'helper'" not in done.stderr
    doc = json.loads((tmp_path / "rep.json").read_text())
    assert doc["selected_modules"] == ["helper"] and doc["processes"] == 2


def test_pool_workers_lock_waits_wake_for_a_pending_sigterm(prog, tmp_path):
    """A SIGTERM that lands just before a worker blocks on the task queue's lock leaves the
    part writer (a Python-level handler) tripped but not run, and `Pool.terminate()` waits
    for that worker forever: in a profiled child, multiprocessing's lock waits wake every
    0.1 s so a tripped handler runs (patched at the fork, or when a spawn or forkserver
    worker imports multiprocessing.synchronize)."""
    prog(
        """\
        import multiprocessing as mp
        import multiprocessing.synchronize as ms


        def lock_wait(_):
            return ms.SemLock.__enter__.__name__


        if __name__ == "__main__":
            print(lock_wait(0))  # the top process: multiprocessing untouched
            for method in ("fork", "spawn", "forkserver"):
                with mp.get_context(method).Pool(1) as pool:
                    print(method, *set(pool.map(lock_wait, range(2))))
        """
    )
    done = _profiled(tmp_path, "helper")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "__enter__", "fork _waking_enter", "spawn _waking_enter", "forkserver _waking_enter",
    ]  # fmt: skip


def test_an_empty_part_is_what_the_report_stage_makes_of_nothing(prog, tmp_path):
    """A child that recorded no call writes its part without the document builder: the
    same document, field for field (but the clock)."""
    code = textwrap.dedent(
        """\
        import json
        from recompyle import _core, processes, report
        report.profile_as_child()
        assert processes._nothing_recorded()
        built = report._own_document()
        empty = processes.empty_document()
        built.pop("started_unix_ns"), empty.pop("started_unix_ns")
        print(built == empty, json.loads(processes._json_text(empty)) == empty)
        import helper
        print(processes._nothing_recorded())  # helper is instrumented: a full part
        """
    )
    done = _run(["-c", code], tmp_path, RECOMPYLE_MODULES="helper")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "False"]
