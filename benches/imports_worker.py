#!/usr/bin/env python
"""Import cost of a large module set under one import hook, in a fresh process; prints JSON.

    python benches/imports_worker.py --make DIR      # copy the module set to DIR/benchlib
    python benches/imports_worker.py --tool plain|ours|pyccolo|typeguard DIR

The module set is the standard library's ``typing``, ``argparse``, ``ast``, ``email`` (with
``email.mime``) and ``json``, copied under the package ``benchlib`` with their imports of
each other renamed. Before timing, the originals are imported (so every dependency outside
the set is loaded already, for every tool alike) and the tool's hook is installed; then
every module of the copy is imported, and only that is timed. ``run_all.py`` decides cold
(no ``__pycache__``) or warm (the previous run's caches in place).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import sys
import sysconfig
import time

PACKAGE = "benchlib"
SINGLE = ["typing", "argparse", "ast"]
PACKAGES = ["email", "json"]
_FROM = re.compile(r"^(\s*)from (email|json)\b", re.M)
_IMPORT = re.compile(r"^(\s*)import (email|json)((?:\.\w+)*)[ \t]*$", re.M)


def make(directory: str) -> list[str]:
    """Write the copy; return its module names in import order."""
    stdlib = sysconfig.get_paths()["stdlib"]
    root = os.path.join(directory, PACKAGE)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    with open(os.path.join(root, "__init__.py"), "w") as fh:
        fh.write('"""Copies of stdlib modules: a large module set for import benchmarks."""\n')
    for name in SINGLE:
        shutil.copy(os.path.join(stdlib, name + ".py"), root)
    for pkg in PACKAGES:
        shutil.copytree(
            os.path.join(stdlib, pkg),
            os.path.join(root, pkg),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for path in _sources(root):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        text = _FROM.sub(rf"\1from {PACKAGE}.\2", text)
        text = _IMPORT.sub(rf"\1import {PACKAGE}.\2\3; from {PACKAGE} import \2", text)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return module_names(directory)


def _sources(root: str) -> list[str]:
    out = []
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [os.path.join(base, f) for f in sorted(files) if f.endswith(".py")]
    return out


def module_names(directory: str) -> list[str]:
    names = []
    for path in _sources(os.path.join(directory, PACKAGE)):
        rel = os.path.relpath(path, directory)[: -len(".py")].split(os.sep)
        if rel[-1] == "__init__":
            rel.pop()
        names.append(".".join(rel))
    return names


def _originals(names: list[str]) -> None:
    for name in names:
        original = name[len(PACKAGE) + 1 :]
        if original:
            importlib.import_module(original)


def run(tool: str, directory: str) -> dict:
    names = module_names(directory)
    _originals(names)
    sys.path.insert(0, directory)
    enter = leave = None
    if tool == "ours":
        import recompyle
        import recompyle.cache  # noqa: F401 -- loaded by the loader anyway; not timed

        recompyle.install(f"{PACKAGE}.*")
    elif tool == "typeguard":
        from typeguard import install_import_hook

        # typeguard's own checks fail on the copied `typing` (it checks against the copy's
        # typing.Any at import): that one module is left plain under typeguard.
        install_import_hook([f"{PACKAGE}.{m}" for m in SINGLE + PACKAGES if m != "typing"])
    elif tool == "pyccolo":
        import pyccolo as pyc

        root = os.path.join(directory, PACKAGE) + os.sep

        class NoopCalls(pyc.BaseTracer):
            def should_instrument_file(self, filename: str) -> bool:
                return filename.startswith(root)

            @pyc.before_call
            def before(self, ret, *_, **__):
                return None

            @pyc.after_call
            def after(self, ret, *_, **__):
                return None

        ctx = NoopCalls.instance().tracing_context()
        enter, leave = ctx.__enter__, lambda: ctx.__exit__(None, None, None)
    elif tool != "plain":
        raise SystemExit(f"unknown tool {tool}")
    if enter is not None:
        enter()
    c0 = time.thread_time_ns()
    t0 = time.perf_counter_ns()
    for name in names:
        importlib.import_module(name)
    elapsed = time.perf_counter_ns() - t0
    cpu = time.thread_time_ns() - c0
    if leave is not None:
        leave()
    loaders: dict[str, int] = {}
    for name in names:
        module = sys.modules[name]
        if not module.__file__.startswith(os.path.join(directory, PACKAGE)):
            raise SystemExit(f"{name} imported from {module.__file__}")
        kind = type(module.__spec__.loader).__name__
        loaders[kind] = loaders.get(kind, 0) + 1
    return {"tool": tool, "ns": elapsed, "cpu_ns": cpu, "modules": len(names), "loaders": loaders}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--make", action="store_true", help="write the module set into DIR")
    ap.add_argument("--tool", default="plain")
    ap.add_argument("directory")
    args = ap.parse_args(argv)
    if args.make:
        result: dict = {"modules": make(args.directory)}
    else:
        result = run(args.tool, args.directory)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
