"""Whole programs: every Python process a profiled run starts is profiled too, and the run's
one report holds them all.

The *top* process (the one ``python -m recompyle run`` started, or the first one the
environment route profiles) makes a private directory beside its output and exports it, with
what children need to instrument themselves, in the environment: ``RECOMPYLE_PARTS`` (the
directory), ``RECOMPYLE_PARTS_OWNER`` (the top's pid), ``RECOMPYLE_MODULES`` and
``RECOMPYLE_TRACK_GLOBALS`` (the selection) and ``RECOMPYLE_MAIN_PATH`` (the script, which
``multiprocessing``'s spawn and forkserver children run again as ``__mp_main__``). Every
child that has recompyle installed starts through the start-up hook and profiles; one
without it runs as it would. A forked child (``os.fork``, ``multiprocessing``'s fork)
starts with an empty profile.

Each child writes its *part* (a profile document naming itself, see
``recompyle.combine``) into the directory, atomically, when it ends: at interpreter exit,
at ``os._exit`` (which ``multiprocessing``'s fork workers and many forked children end
with), and on ``SIGTERM`` (``Pool.terminate`` sends it), after which the program's own
handler runs, or the default action. The top process merges every part with its own
profile at exit and writes the report the user asked for; the directory is removed. Parts
left by children that were killed (``kill -9``) or still running are merged when they are
there; ``python -m recompyle combine`` merges parts kept by hand.
"""

from __future__ import annotations

# The C module, not `signal`: that one imports `enum` (milliseconds at every child's start).
import _signal as signal
import os
import sys

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: children import this at start-up, keep it light
    from typing import Any, Callable

__all__ = [
    "child_mode",
    "collect",
    "configure",
    "finished",
    "has_parts",
    "per_process",
    "own_document",
    "role",
    "start_top",
    "write_own_part",
    "write_part",
]

ENV_DIR = "RECOMPYLE_PARTS"
ENV_OWNER = "RECOMPYLE_PARTS_OWNER"
ENV_MAIN = "RECOMPYLE_MAIN_PATH"
_PREFIX = ".recompyle-parts-"

# This process's role: "top" (merges), "child" (leaves a part) or "" (neither).
_state: dict[str, Any] = {"role": "", "written": False, "pid": 0}


def role() -> str:
    """``"top"``, ``"child"`` or ``""``, for this process (a fork changes it)."""
    if _state["role"] and _state["pid"] != os.getpid():
        _become_child_after_fork()
    return _state["role"]


def start_top(
    output: str | None,
    patterns: str = "",
    tracked: str = "",
    main: str = "",
    *,
    per_process: bool = False,
) -> None:
    """Make this process the top of a profiled run whose children leave parts. Does nothing in
    a process that is itself a child of a profiled run."""
    if os.environ.get(ENV_DIR) and os.environ.get(ENV_OWNER) != str(os.getpid()):
        return
    import tempfile

    base = os.path.dirname(os.path.abspath(output)) if output else None
    try:
        directory = tempfile.mkdtemp(prefix=_PREFIX, dir=base)
    except OSError:
        directory = tempfile.mkdtemp(prefix=_PREFIX)
    os.environ[ENV_DIR] = directory
    os.environ[ENV_OWNER] = str(os.getpid())
    if patterns:
        os.environ["RECOMPYLE_MODULES"] = patterns
    if tracked:
        os.environ["RECOMPYLE_TRACK_GLOBALS"] = tracked
    if main:
        os.environ[ENV_MAIN] = os.path.abspath(main)
    # The top writes the report the user asked for; children must not read it as theirs.
    _state.update(role="top", pid=os.getpid(), written=False, per_process=per_process)
    _watch_forks()
    _hook_os_exit()


def child_mode() -> bool:
    """Whether this process is a child of a profiled run (set up by the start-up hook): if
    so, profile, and leave a part at exit instead of writing a report."""
    if _state["role"] == "child" and _state["pid"] == os.getpid():
        return True  # set up already
    directory = os.environ.get(ENV_DIR)
    owner = os.environ.get(ENV_OWNER)
    if not directory or owner == str(os.getpid()) or not os.path.isdir(directory):
        return False
    _state.update(role="child", pid=os.getpid(), written=False, started_unix_ns=_time_ns())
    _install_child_hooks()
    _watch_forks()
    _instrument_mp_main()
    return True


def _watch_forks() -> None:
    if not _state.get("fork_hook"):
        _state["fork_hook"] = True
        os.register_at_fork(before=_ready_for_fork, after_in_child=_become_child_after_fork)


def _ready_for_fork() -> None:
    """Import what writing a part needs in the parent, before it forks: in a forked child an
    import can wait forever on a module lock that another thread of the parent held at the
    fork. (A new interpreter imports it when it ends, not at its start.)"""
    import json  # noqa: F401

    from recompyle import atomic_file, combine  # noqa: F401


def _become_child_after_fork() -> None:
    """In a forked child: the profile so far is the parent's, so it starts empty here."""
    if _state["pid"] == os.getpid():
        return
    _state.update(role="child", pid=os.getpid(), written=False, started_unix_ns=_time_ns())
    try:
        from recompyle import _core

        _core.profiler_reset()
    except Exception:  # noqa: BLE001 -- a fork must not fail because of us
        pass
    _install_child_hooks()


def _before_exit() -> None:
    """At ``os._exit``: a child leaves its part; the top writes the report (once)."""
    if role() == "child":
        write_own_part()
    elif role() == "top" and not _state.get("finished"):
        finish = _state.get("finish")
        if finish is not None:
            finish()
        _state["finished"] = True


def _install_child_hooks() -> None:
    """Write the part at exit, at ``os._exit`` and on SIGTERM."""
    import atexit

    atexit.register(write_own_part)
    _hook_os_exit()
    _chain_sigterm()
    _wake_lock_waits()


def _hook_os_exit() -> None:
    if not getattr(os._exit, "__recompyle_part__", False):
        real_exit = os._exit

        def _exit(status: int) -> None:
            _before_exit()
            real_exit(status)

        _exit.__recompyle_part__ = True  # type: ignore[attr-defined]
        _exit.__doc__ = real_exit.__doc__
        _exit.__wrapped__ = real_exit  # type: ignore[attr-defined]
        os._exit = _exit  # type: ignore[assignment]


# -- SIGTERM ----------------------------------------------------------------------------------
#
# The part writer is a Python-level handler, and CPython runs one only between bytecodes of
# the main thread: a SIGTERM that lands after the thread's last check and before it blocks
# (under load, while it is preempted on its way into the wait) trips the handler, which then
# waits for a wake-up that never comes (bpo-38227; coverage.py #1310). A multiprocessing
# pool worker going back to the task queue as `Pool.terminate()` starts is that case: the
# parent holds the queue's lock for good and waits for the worker, which sleeps in
# `sem_wait` with the handler tripped (seen with gdb: `Handlers[SIGTERM].tripped == 1`).
# So in a child, multiprocessing's lock waits (`with lock:`, which the queues' `get` uses)
# wake every 0.1 s to let a tripped handler run; acquiring is otherwise unchanged.

_WAKE_S = 0.1


def _waking_enter(self: Any) -> bool:
    """``SemLock.__enter__`` that returns to the interpreter every 0.1 s while it waits."""
    acquire = self._semlock.acquire
    while not acquire(True, _WAKE_S):
        pass
    return True


def _patch_synchronize(module: Any) -> None:
    semlock = getattr(module, "SemLock", None)
    if semlock is not None and "__enter__" in vars(semlock):
        _waking_enter.__wrapped__ = semlock.__enter__  # type: ignore[attr-defined]
        semlock.__enter__ = _waking_enter


class _AfterImport:
    """A finder that asks the finders after it and patches ``multiprocessing.synchronize``
    once its module has run (a spawn or forkserver worker imports it after start-up)."""

    name = "multiprocessing.synchronize"

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        later = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else []
        for finder in later:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                exec_module = getattr(spec.loader, "exec_module", None)
                if exec_module is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None

    def invalidate_caches(self) -> None:
        pass


class _PatchingLoader:
    """The module's own loader, which patches the module after running it."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _patch_synchronize(module)


def _wake_lock_waits() -> None:
    """Make multiprocessing's lock waits wake (see above), now or when imported."""
    module = sys.modules.get(_AfterImport.name)
    if module is not None:
        _patch_synchronize(module)
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


def _chain_sigterm() -> None:
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        return
    if getattr(previous, "__recompyle_part__", False):
        return

    def on_term(signum: int, frame: Any) -> None:
        write_own_part()
        if callable(previous):
            previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    on_term.__recompyle_part__ = True  # type: ignore[attr-defined]
    try:
        signal.signal(signal.SIGTERM, on_term)
    except (ValueError, OSError):  # not the main thread: the part is still written at exit
        pass


def write_own_part() -> None:
    """This child's part, once (at exit, ``os._exit`` or SIGTERM, whichever comes first)."""
    if role() != "child" or _state["written"] or "document" not in _state:
        return  # not a child, written already, or never profiling (nothing to leave)
    _state["written"] = True
    # A SIGTERM while the part is written (Pool.terminate() right as a worker ends) would
    # kill the process half-way: it waits until the part is in place, then acts as always.
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    except (AttributeError, ValueError, OSError):
        mask = None
    try:
        doc = empty_document() if _nothing_recorded() else own_document()
        write_part({**doc, "selected_modules": _selected_modules()})
    except Exception as exc:  # noqa: BLE001 -- the program's exit stays its own
        sys.stderr.write(f"recompyle: cannot write this process's profile part: {exc}\n")
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _selected_modules() -> list[str]:
    """The modules of this process the run's patterns select (a bare ``*`` selects no name
    worth telling): the top process warns about a pattern only if no process matched it."""
    from recompyle._core import ModuleMatcher
    from recompyle.finder import installed_patterns, tracked_patterns

    named = [p for p in (*installed_patterns(), *tracked_patterns()) if p not in ("*", "**")]
    if not named:
        return []
    matcher = ModuleMatcher(",".join(named))
    return sorted(name for name in list(sys.modules) if matcher.matches(name))


def own_document() -> dict[str, Any]:
    """This process's profile as a document, from the report stage's builder (``configure``:
    ``report.report_at_exit`` and ``report.profile_as_child`` set it before any role)."""
    return _state["document"]()


def _nothing_recorded() -> bool:
    """Whether this child cannot have recorded a call: no instrumented code ran here (no
    module of recompyle's loader, no ``__mp_main__`` of ours, none of the other routes to
    instrumented code imported). Asking the native profiler instead would cost up to
    0.2 ms (``_core.profiler_counts`` calibrates its clock over at least that long) and a
    view of everything recorded."""
    if _state.get("ran_main") or _INSTRUMENTING.intersection(sys.modules):
        return False
    for module in list(sys.modules.values()):
        loader = getattr(getattr(module, "__spec__", None), "loader", None)
        if type(loader).__name__ == "RecompyleLoader":
            return False
    return True


# Modules through which code is instrumented other than by an import (decorators, notebook
# cells, the profiler's own API): a child that imported one builds its part in full.
_INSTRUMENTING = frozenset(
    ("recompyle.function_rewrite", "recompyle.ipython", "recompyle.profiler", "recompyle.deps")
)


def empty_document() -> dict[str, Any]:
    """The part of a child that recorded nothing: what ``report.build_document`` makes of an
    empty record (``tests/test_processes.py`` holds them equal), without importing the
    report stage's document builder (``recompyle.profiler``: dataclasses, inspect, re),
    which would cost every such child more than the rest of its start-up."""
    return {
        "version": 2,
        "python": ".".join(map(str, sys.version_info[:3])),
        "argv": list(sys.argv),
        "pid": os.getpid(),
        "wall_ns": None,
        "sites": [],
        "roots": [],
        "timeline": None,
        "started_unix_ns": _state.get("started_unix_ns") or _time_ns(),
        "files": {},
    }


def _time_ns() -> int:
    import time

    return time.time_ns()


def _json_text(value: Any) -> str:
    """JSON of a small part (dicts, lists, strings, ints, None, booleans) without the json
    package, whose decoder imports re (and enum): an empty part is written with this."""
    from _json import encode_basestring_ascii as quote

    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, dict):
        items = (f"{quote(str(k))}: {_json_text(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_json_text, value)) + "]"
    raise TypeError(f"not in a part: {type(value).__name__}")


def configure(
    document: Callable[[], dict[str, Any]] | None = None,
    finish: Callable[[], None] | None = None,
) -> None:
    """What this module cannot know without importing the report stage (which imports it):
    how to build this process's document, and how the top process writes its report (run
    by ``os._exit`` too, which skips ``atexit``)."""
    if document is not None:
        _state["document"] = document
    if finish is not None:
        _state["finish"] = finish


def write_part(doc: dict[str, Any], directory: str | None = None) -> str | None:
    """Write ``doc`` as this process's part into the run's parts directory; its path, or None
    when there is no directory (the top process ended and took the parts)."""
    from recompyle.atomic_file import write_atomically
    from recompyle.combine import new_part_id

    directory = directory or os.environ.get(ENV_DIR)
    if not directory or not os.path.isdir(directory):
        return None
    part_id = new_part_id()
    doc = {**doc, "parts": [part_id], "pid": os.getpid()}
    if doc["sites"] or "json" in sys.modules:
        import json

        data = json.dumps(doc).encode("utf-8")
    else:
        data = _json_text(doc).encode("utf-8")
    name = f"part-{os.getpid()}-{part_id.rsplit(':', 1)[-1]}.json"
    path = os.path.join(directory, name)
    write_atomically(path, data, 0o600)
    return path


def finished() -> bool:
    """Whether the top process wrote its report already (at ``os._exit``)."""
    return bool(_state.get("finished"))


def per_process() -> bool:
    """Whether the report keeps the run's processes apart (``run --per-process``)."""
    return _state["role"] == "top" and bool(_state.get("per_process"))


def has_parts() -> bool:
    """Whether children of this (top) process left parts to merge."""
    directory = os.environ.get(ENV_DIR)
    if _state["role"] != "top" or not directory or not os.path.isdir(directory):
        return False
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    if not any(n.startswith("part-") and n.endswith(".json") for n in names):
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        return False
    return True


def collect(own: dict[str, Any], *, per_process: bool | None = None) -> dict[str, Any]:
    """In the top process at exit: ``own`` merged with every part the children left; the
    parts directory is removed. A part that cannot be read is named and skipped."""
    import shutil

    from recompyle.combine import combine, new_part_id, read_part

    if per_process is None:
        per_process = bool(_state.get("per_process"))

    directory = os.environ.get(ENV_DIR)
    docs = [{**own, "parts": [new_part_id()], "pid": os.getpid()}]
    if directory and os.path.isdir(directory) and _state["role"] == "top":
        for name in sorted(os.listdir(directory)):
            if name.startswith("part-") and name.endswith(".json"):
                part = read_part(os.path.join(directory, name))
                if part is not None:
                    docs.append(part)
        shutil.rmtree(directory, ignore_errors=True)
    if len(docs) == 1 and not per_process:
        return own
    merged = combine(docs, roots="per-process" if per_process else "by-name")
    # A pattern only a child's modules matched is not "matched nothing" (finder's warning,
    # given at exit after this).
    from recompyle.finder import matched_elsewhere

    matched_elsewhere(merged.get("selected_modules") or [])
    merged["pid"] = os.getpid()
    merged["argv"] = own.get("argv", merged.get("argv"))
    return merged


def _instrument_mp_main() -> None:
    """``multiprocessing``'s spawn and forkserver children run the parent's script again as
    ``__mp_main__`` through ``runpy.run_path``, which compiles it without import hooks: run
    it instrumented instead, so the functions the workers call are the profiled ones."""
    main_path = os.environ.get(ENV_MAIN)
    if not main_path:
        return
    import runpy

    if getattr(runpy.run_path, "__recompyle_part__", False):
        return
    real_run_path = runpy.run_path

    def run_path(
        path_name: str, init_globals: dict[str, Any] | None = None, run_name: str | None = None
    ) -> dict[str, Any]:
        if run_name != "__mp_main__" or os.path.abspath(path_name) != main_path:
            return real_run_path(path_name, init_globals, run_name)
        return _run_instrumented(path_name, init_globals, run_name)

    run_path.__recompyle_part__ = True  # type: ignore[attr-defined]
    run_path.__wrapped__ = real_run_path  # type: ignore[attr-defined]
    run_path.__doc__ = real_run_path.__doc__
    runpy.run_path = run_path


def _run_instrumented(
    path: str, init_globals: dict[str, Any] | None, run_name: str
) -> dict[str, Any]:
    """What ``runpy.run_path`` does for a script file, with the code instrumented."""
    import io
    import types

    from recompyle.loader import instrument_source

    with io.open_code(path) as fh:
        data = fh.read()
    code = instrument_source(data, path, run_name)
    _state["ran_main"] = True
    module = types.ModuleType(run_name)
    namespace = module.__dict__
    if init_globals is not None:
        namespace.update(init_globals)
    namespace.update(
        __name__=run_name,
        __file__=path,
        __cached__=None,
        __doc__=None,
        __loader__=None,
        __package__="",
        __spec__=None,
    )
    saved = sys.modules.get(run_name)
    sys.modules[run_name] = module
    try:
        exec(code, namespace)
    finally:
        if saved is None:
            sys.modules.pop(run_name, None)
        else:
            sys.modules[run_name] = saved
    return namespace.copy()
