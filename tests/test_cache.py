"""The bytecode cache of instrumented modules (recompyle/cache.py).

PYTHONDONTWRITEBYTECODE=1 may be set around the test run: tests that need the cache written
turn ``sys.dont_write_bytecode`` off in-process, and subprocesses get an environment without
the variable. A cache *hit* is proven by making the transform fail under RECOMPYLE_STRICT=1:
a miss would then raise instead of importing.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

import recompyle
from recompyle import _core, cache
from recompyle.loader import RecompyleLoader

SOURCE = """\
def double(x):
    return abs(x) * 2


def boom():
    return int("not a number")


class K:
    def m(self):
        return len("abc")


def use():
    return K().m()
"""


def _failing_transform(*args, **kwargs):
    raise _core.InternalTransformError("transform called (cache miss)")


@pytest.fixture
def writable(monkeypatch):
    """Bytecode writing on, whatever PYTHONDONTWRITEBYTECODE says."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


@pytest.fixture
def package(tmp_path, monkeypatch):
    """make(source) -> (name, directory): a fresh package on sys.path, selected."""
    made: list[str] = []

    def make(source: str = SOURCE, files: dict[str, str] | None = None) -> tuple[str, Path]:
        name = f"cachepkg_{len(made)}_{tmp_path.name[-8:].replace('-', '_')}"
        root = tmp_path / name
        root.mkdir()
        (root / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
        for rel, text in (files or {}).items():
            (root / rel).write_text(textwrap.dedent(text), encoding="utf-8")
        made.append(name)
        recompyle.install(f"{name}.*")
        return name, root

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RECOMPYLE_STRICT", raising=False)
    yield make
    recompyle.uninstall()
    _forget(made)


def _forget(names) -> None:
    for mod in list(sys.modules):
        if any(mod == n or mod.startswith(n + ".") for n in names):
            del sys.modules[mod]
    importlib.invalidate_caches()


def _import_fresh(name: str):
    _forget([name])
    return importlib.import_module(name)


def _import_from_cache_only(name: str, monkeypatch):
    """Import ``name`` with the transform broken: succeeds only on a cache hit."""
    with monkeypatch.context() as m:
        m.setattr(_core, "transform", _failing_transform)
        m.setenv("RECOMPYLE_STRICT", "1")
        return _import_fresh(name)


def _assert_instrumented(mod) -> None:
    assert isinstance(mod.__spec__.loader, RecompyleLoader)
    seen = []
    with recompyle.handler(before=lambda e: seen.append(e.source)):
        assert mod.double(-3) == 6
        assert mod.use() == 3
    assert seen == ["abs", "K", "K().m", "len"]


def _cache_files(root: Path) -> list[Path]:
    return sorted((root / "__pycache__").glob("*.recompyle-*.pyc"))


def _plain_pyc(root: Path, stem: str = "__init__") -> Path:
    return Path(importlib.util.cache_from_source(str(root / f"{stem}.py")))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECOMPYLE_")
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    env.update(extra)
    return env


def _run(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


# ------------------------------------------------------------------------ name and format


def test_cache_file_has_its_own_name_beside_the_plain_pyc(package, writable):
    name, root = package()
    _assert_instrumented(_import_fresh(name))
    files = _cache_files(root)
    assert len(files) == 1
    plain = _plain_pyc(root)
    assert files[0].parent == plain.parent
    assert files[0].name.startswith(plain.name[: -len(".pyc")] + ".recompyle-")
    assert files[0].name.endswith(".pyc")
    assert f".recompyle-{recompyle.__version__}-" in files[0].name
    assert not plain.exists()
    assert [p for p in (root / "__pycache__").iterdir() if p not in files] == []


def test_file_is_a_checked_hash_pyc_of_the_source(package, writable):
    name, root = package()
    _import_fresh(name)
    blob = _cache_files(root)[0].read_bytes()
    source = (root / "__init__.py").read_bytes()
    assert blob[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(blob[4:8], "little") == 0b11  # hash-based, checked
    assert blob[8:16] == importlib.util.source_hash(source)


def test_second_import_is_served_from_the_cache(package, writable, monkeypatch):
    name, root = package()
    _import_fresh(name)
    mod = _import_from_cache_only(name, monkeypatch)
    _assert_instrumented(mod)
    # Sites were registered from the cached table: events carry file and line.
    events = []
    with recompyle.handler(before=lambda e: events.append((e.filename, e.lineno, e.caller))):
        mod.double(1)
    assert events == [(str(root / "__init__.py"), 2, "double")]


def test_cache_miss_really_fails_under_the_probe(package, writable, monkeypatch):
    """The probe used above must be able to fail: with no cache file, it raises."""
    name, _ = package()
    with pytest.raises(RuntimeError, match="transform called"):
        _import_from_cache_only(name, monkeypatch)


def _age(path: Path, seconds: int = 100) -> os.stat_result:
    """Give ``path`` an mtime in the past, so the cache records its stamp (a file modified
    in the last two seconds gets none, see ``recompyle.cache``)."""
    past = path.stat().st_mtime_ns - seconds * 10**9
    os.utime(path, ns=(past, past))
    return path.stat()


def _same_size_same_mtime_edit(path: Path, text: str, st: os.stat_result) -> None:
    path.write_text(text)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_warm_import_takes_the_stamp_and_does_not_read_the_source(package, writable, monkeypatch):
    name, root = package()
    path = root / "__init__.py"
    _age(path)
    _import_fresh(name)
    (cache_file,) = _cache_files(root)
    st = path.stat()
    assert (
        cache_file.read_bytes()[16 : cache._HEADER]
        == cache.Stamp(st.st_mtime_ns, st.st_size).pack()
    )
    opened: list[str] = []
    real_open = cache.open_code

    def spying_open(p):
        opened.append(os.fspath(p))
        return real_open(p)

    monkeypatch.setattr(cache, "open_code", spying_open)
    _assert_instrumented(_import_from_cache_only(name, monkeypatch))
    assert opened == [str(cache_file)]


def test_touched_but_unchanged_source_is_restamped_not_transformed(package, writable, monkeypatch):
    name, root = package()
    path = root / "__init__.py"
    _age(path)
    _import_fresh(name)
    (cache_file,) = _cache_files(root)
    before = cache_file.read_bytes()
    st = _age(path, 50)  # a checkout touched it: new mtime, same bytes
    _assert_instrumented(_import_from_cache_only(name, monkeypatch))
    after = cache_file.read_bytes()
    assert after[16 : cache._HEADER] == cache.Stamp(st.st_mtime_ns, st.st_size).pack()
    assert after[:16] == before[:16] and after[cache._HEADER :] == before[cache._HEADER :]


_AUDITED_IMPORT = """
    import json, sys
    root = {root!r}
    seen = []

    def hook(event, args):
        # CPython's own audit events: every `open` (io.open, io.open_code) and every
        # `compile()` (the loader compiles the rewritten text there; a cache hit does not).
        if event == "open" and isinstance(args[0], str) and args[0].startswith(root):
            seen.append(["open", args[0]])
        elif event == "compile" and isinstance(args[1], str) and args[1].startswith(root):
            seen.append(["compile", args[1]])

    sys.addaudithook(hook)
    import recompyle
    recompyle.install({pattern!r})
    import {name} as mod
    print(type(mod.__spec__.loader).__name__)
    print(json.dumps(seen))
"""


def _audited_import(name: str, root: Path, tmp_path: Path, **env: str) -> tuple[list, str]:
    """Import ``name`` in a fresh process with CPython's audit hooks watching: the files
    opened and the texts compiled under ``root``, and stderr (for ``RECOMPYLE_DEBUG``)."""
    import json

    code = _AUDITED_IMPORT.format(root=str(root), pattern=f"{name}.*", name=name)
    proc = _run(code, tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    loader, events = proc.stdout.splitlines()
    assert loader == "RecompyleLoader"
    return json.loads(events), proc.stderr


def test_warm_import_opens_nothing_but_the_cache_file(package, tmp_path):
    """As CPython with its timestamp pycs: a matching stamp means the source is neither read
    nor compiled, by anything in the process (the site table travels in the cache file)."""
    name, root = package()
    source = str(root / "__init__.py")
    _age(root / "__init__.py")
    cold, _ = _audited_import(name, root, tmp_path)
    assert ["compile", source] in cold and ["open", source] in cold
    (cache_file,) = _cache_files(root)
    warm, _ = _audited_import(name, root, tmp_path)
    assert warm == [["open", str(cache_file)]]


def test_touched_source_is_restamped_not_compiled(package, tmp_path):
    """A checkout that rewrites a file with the same bytes (new mtime): the next import
    reads the source once to compare hashes, compiles nothing, and re-stamps the cache file
    (written to a temporary file, then renamed), so the import after that opens only the
    cache file again."""
    name, root = package()
    path = root / "__init__.py"
    source = str(path)
    _age(path)
    _audited_import(name, root, tmp_path)
    (cache_file,) = _cache_files(root)
    before = cache_file.read_bytes()
    st = _age(path, 50)
    touched, stderr = _audited_import(name, root, tmp_path, RECOMPYLE_DEBUG="cache")
    assert touched[:2] == [["open", str(cache_file)], ["open", source]]
    (written,) = touched[2:]
    assert written[0] == "open" and Path(written[1]).parent == cache_file.parent
    assert written[1].endswith(".tmp")
    assert f"recompyle: cache: {source}: re-stamped" in stderr
    assert "miss" not in stderr
    after = cache_file.read_bytes()
    assert after[16 : cache._HEADER] == cache.Stamp(st.st_mtime_ns, st.st_size).pack()
    assert after[cache._HEADER :] == before[cache._HEADER :]
    warm, _ = _audited_import(name, root, tmp_path)
    assert warm == [["open", str(cache_file)]]


def test_hash_check_reads_every_source_and_compiles_none(package, tmp_path):
    """``RECOMPYLE_CACHE_CHECK=hash``: the source is read and hashed on every import (no
    compile while it matches)."""
    name, root = package()
    source = str(root / "__init__.py")
    _age(root / "__init__.py")
    _audited_import(name, root, tmp_path)
    (cache_file,) = _cache_files(root)
    warm, _ = _audited_import(name, root, tmp_path, RECOMPYLE_CACHE_CHECK="hash")
    assert warm == [["open", str(cache_file)], ["open", source]]


def test_changed_source_is_a_miss_even_with_a_recent_mtime(package, writable):
    name, root = package("X = len('ab')\n")
    path = root / "__init__.py"
    assert _import_fresh(name).X == 2
    path.write_text("X = abs(-777)\n")  # same size, written just now
    mod = _import_fresh(name)
    assert mod.X == 777


def test_a_file_modified_just_now_gets_no_stamp():
    now = 1_700_000_000_123_456_789
    fine = cache.Stamp(now - 50_000_000, 10)  # 50 ms ago, nanosecond mtimes
    assert cache._stamp_bytes(fine, now) == bytes(16)
    older = cache.Stamp(now - 150_000_000, 10)
    assert cache._stamp_bytes(older, now) == older.pack()
    coarse = cache.Stamp((now // 10**9 - 1) * 10**9, 10)  # whole seconds, 1.1 s ago
    assert cache._stamp_bytes(coarse, now) == bytes(16)
    coarse_old = cache.Stamp((now // 10**9 - 3) * 10**9, 10)
    assert cache._stamp_bytes(coarse_old, now) == coarse_old.pack()
    assert cache._stamp_bytes(None, now) == bytes(16)


def test_same_size_and_mtime_edit_is_caught_by_hash_only(package, writable, monkeypatch):
    """The documented trade-off of the default (CPython's own for timestamp pycs), and the
    ``RECOMPYLE_CACHE_CHECK=hash`` setting that closes it."""
    name, root = package("X = len('ab')\n")
    path = root / "__init__.py"
    st = _age(path)
    assert _import_fresh(name).X == 2
    _same_size_same_mtime_edit(path, "X = abs(-777)\n", st)
    assert _import_fresh(name).X == 2  # not seen by default: the stamp matches
    monkeypatch.setenv("RECOMPYLE_CACHE_CHECK", "hash")
    mod = _import_fresh(name)
    assert mod.X == 777
    seen = []
    with recompyle.handler(before=lambda e: seen.append(e.source)):
        importlib.reload(mod)
    assert seen == ["abs"]


def test_unknown_cache_check_value_warns_and_checks_by_hash(package, writable, monkeypatch):
    name, root = package("X = len('ab')\n")
    path = root / "__init__.py"
    st = _age(path)
    assert _import_fresh(name).X == 2
    _same_size_same_mtime_edit(path, "X = abs(-777)\n", st)
    monkeypatch.setenv("RECOMPYLE_CACHE_CHECK", "sometimes")
    monkeypatch.setattr(cache, "_warned", set())
    with pytest.warns(RuntimeWarning, match="RECOMPYLE_CACHE_CHECK='sometimes'"):
        assert _import_fresh(name).X == 777


def test_debug_cache_says_why_each_module_missed(package, writable, tmp_path):
    name, root = package()
    code = f"import recompyle; recompyle.install({name + '.*'!r}); import {name}"
    first = _run(code, tmp_path, RECOMPYLE_DEBUG="cache")
    assert first.returncode == 0, first.stderr
    assert f"recompyle: cache: {root / '__init__.py'}: miss: no cache file" in first.stderr
    (root / "__init__.py").write_text(SOURCE + "\nY = 1\n")
    second = _run(code, tmp_path, RECOMPYLE_DEBUG="cache")
    assert "miss: the source changed since the cache was written" in second.stderr
    quiet = _run(code, tmp_path)
    assert "recompyle: cache" not in quiet.stderr


def test_optimization_levels_have_their_own_files(tmp_path, writable):
    path = str(tmp_path / "m.py")
    names = {cache.cache_path(path, level) for level in (0, 1, 2)}
    assert len(names) == 3
    assert ".opt-1.recompyle-" in cache.cache_path(path, 1)
    assert cache.cache_path(path, -1) == cache.cache_path(path, sys.flags.optimize)


# ------------------------------------------------------------------------ damaged files


def _damaged(blob: bytes) -> list[tuple[str, bytes]]:
    n = len(blob)
    cases = [
        (f"truncated to {k}", blob[:k])
        for k in (0, 3, 8, 15, 16, 17, 24, 31, 32, 33, n // 2, n - 9, n - 1)
    ]
    for pos in (0, 5, 9, 16, 20, 27, 33, n // 3, n // 2, n - 12, n - 1):
        flipped = bytearray(blob)
        flipped[pos] ^= 0x5A
        cases.append((f"byte {pos} flipped", bytes(flipped)))
    cases.append(("garbage appended", blob + b"\x00garbage"))
    cases.append(("all zeros", bytes(n)))
    cases.append(("empty marshal payload", blob[: cache._HEADER] + b"N" + blob[-8:]))
    return cases


def test_damaged_cache_files_are_ignored_and_rewritten(package, writable, monkeypatch):
    name, root = package()
    _import_fresh(name)
    (cache_file,) = _cache_files(root)
    good = cache_file.read_bytes()
    for label, bad in _damaged(good):
        cache_file.write_bytes(bad)
        monkeypatch.setenv("RECOMPYLE_STRICT", "1")  # any fallback would raise
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mod = _import_fresh(name)
        monkeypatch.delenv("RECOMPYLE_STRICT")
        _assert_instrumented(mod)
        assert cache_file.read_bytes() != bad, label
        # ...and what was written back is a good cache file again.
        _assert_instrumented(_import_from_cache_only(name, monkeypatch))


def test_payload_that_is_not_ours_is_a_miss(package, writable, monkeypatch):
    """A well-formed file whose payload is not (layout, key, sites, code): e.g. a plain pyc
    copied under our name, or another layout version."""
    import marshal

    name, root = package()
    _import_fresh(name)
    (cache_file,) = _cache_files(root)
    good = cache_file.read_bytes()
    source_hash = good[8:16]
    plain_code = compile((root / "__init__.py").read_bytes(), str(root / "__init__.py"), "exec")
    layout, key, sites, code = marshal.loads(good[cache._HEADER : -8])
    payloads = [
        plain_code,
        (layout + 1, key, sites, code),
        (layout, key, sites, "not code"),
        (layout, key, "not sites", code),
        (layout, -1, sites, code),
        (layout, key, (("a", 1, 2, 3, "x", "y"),), code),
        (layout, key, sites),
    ]
    for payload in payloads:
        data = marshal.dumps(payload)
        blob = good[:8] + source_hash + good[16 : cache._HEADER] + data
        blob += _core.cache_checksum(data).to_bytes(8, "little")
        cache_file.write_bytes(blob)
        with monkeypatch.context() as m:
            m.setenv("RECOMPYLE_STRICT", "1")
            mod = _import_fresh(name)
        _assert_instrumented(mod)
        assert cache_file.read_bytes() != blob


# ------------------------------------------------------------------------ where it cannot write


def test_dont_write_bytecode_skips_the_write_but_still_reads(package, writable, monkeypatch):
    name, root = package()
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _assert_instrumented(_import_fresh(name))
    assert not (root / "__pycache__").exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    _import_fresh(name)
    assert len(_cache_files(root)) == 1
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _assert_instrumented(_import_from_cache_only(name, monkeypatch))


def test_a_file_where_pycache_should_be(package, writable, monkeypatch):
    name, root = package()
    (root / "__pycache__").write_bytes(b"not a directory")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_instrumented(_import_fresh(name))
    assert (root / "__pycache__").read_bytes() == b"not a directory"
    assert list(root.glob("*.tmp")) == []


def _deny_writes(monkeypatch, root: Path) -> list[str]:
    """Make creating anything under ``root`` fail with EACCES, as a read-only directory
    does for a user without rights (these tests run as root on CI, where chmod is no
    obstacle)."""
    denied: list[str] = []
    real_mkdir, real_open = os.mkdir, os.open

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(root)):
            denied.append(str(path))
            raise PermissionError(13, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if str(path).startswith(str(root)) and flags & os.O_CREAT:
            denied.append(str(path))
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    return denied


def test_read_only_package_directory(package, writable, monkeypatch):
    name, root = package()
    with monkeypatch.context() as m:
        denied = _deny_writes(m, root)
        _assert_instrumented(_import_fresh(name))
    assert denied == [str(root / "__pycache__")]
    assert not (root / "__pycache__").exists()


def test_read_only_pycache_is_still_read(package, writable, monkeypatch):
    name, root = package()
    _import_fresh(name)
    with monkeypatch.context() as m:
        _deny_writes(m, root)
        _assert_instrumented(_import_from_cache_only(name, monkeypatch))
    # A stale file in a read-only __pycache__: transformed again, not written, not used.
    (root / "__init__.py").write_text(SOURCE + "\nEXTRA = abs(-1)\n")
    with monkeypatch.context() as m:
        denied = _deny_writes(m, root)
        mod = _import_fresh(name)
    assert mod.EXTRA == 1 and len(denied) == 1 and denied[0].endswith(".tmp")
    _assert_instrumented(mod)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="chmod does not stop root"
)
def test_read_only_directory_by_permissions(package, writable):
    name, root = package()
    root.chmod(0o555)
    try:
        _assert_instrumented(_import_fresh(name))
        assert not (root / "__pycache__").exists()
    finally:
        root.chmod(0o755)


def test_pycache_prefix(package, writable, monkeypatch, tmp_path):
    name, root = package()
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    _import_fresh(name)
    assert not (root / "__pycache__").exists()
    found = list(prefix.rglob("*.recompyle-*.pyc"))
    assert len(found) == 1
    assert (
        found[0].parent == Path(importlib.util.cache_from_source(str(root / "__init__.py"))).parent
    )
    assert list(prefix.rglob("*.pyc")) == found
    _assert_instrumented(_import_from_cache_only(name, monkeypatch))


# ------------------------------------------------------------------------ the plain pyc


def test_plain_pyc_is_never_written_read_or_overwritten(package, writable):
    name, root = package()
    plain = _plain_pyc(root)
    py_compile.compile(
        str(root / "__init__.py"),
        cfile=str(plain),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    before = plain.read_bytes()
    mod = _import_fresh(name)
    _assert_instrumented(mod)  # not the plain pyc's code
    mod = _import_fresh(name)  # from our cache
    _assert_instrumented(mod)
    assert plain.read_bytes() == before
    assert len(_cache_files(root)) == 1


def test_runpy_and_pkgutil_get_code_write_only_our_file(package, writable, tmp_path):
    import pkgutil
    import runpy

    name, root = package(files={"tool.py": "def g():\n    return len('abcd')\nRESULT = g()\n"})
    _import_fresh(name)
    result = runpy.run_module(f"{name}.tool")
    assert result["RESULT"] == 4
    assert _core.SELECTOR_NAME in result["g"].__code__.co_names
    importlib.import_module(f"{name}.tool")
    if hasattr(pkgutil, "get_loader"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loader = pkgutil.get_loader(f"{name}.tool")
    else:  # removed in 3.14: the spec's loader is what it returned
        loader = importlib.util.find_spec(f"{name}.tool").loader
    assert isinstance(loader, RecompyleLoader)
    for code in (
        loader.get_code(f"{name}.tool"),
        loader.get_code(f"{name}.tool"),
        RecompyleLoader(f"{name}.tool", str(root / "tool.py")).get_code(f"{name}.tool"),
        loader.source_to_code((root / "tool.py").read_bytes(), str(root / "tool.py")),
    ):
        assert _core.SELECTOR_NAME in code.co_names
    assert not _plain_pyc(root, "tool").exists()
    assert not _plain_pyc(root).exists()
    assert len([p for p in _cache_files(root) if p.name.startswith("tool.")]) == 1


# ------------------------------------------------------------------------ keys and moves


def test_cached_key_taken_in_this_process_falls_back_to_a_transform(package, writable, tmp_path):
    """Another file holds the cached module key in a new process (as a salted key of
    another run could): the cache is not used, the module is transformed under a free key."""
    import marshal

    name, root = package()
    _import_fresh(name)
    (cache_file,) = _cache_files(root)
    _, key, _, _ = marshal.loads(cache_file.read_bytes()[cache._HEADER : -8])
    script = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import recompyle
        from recompyle import _core
        assert _core.register_site_table({key}, "elsewhere.py", "other", bytes(8))  # no sites
        recompyle.install("{name}.*")
        import {name} as mod
        seen = []
        with recompyle.handler(before=lambda e: seen.append((e.filename, e.caller, e.source))):
            mod.double(1)
        print(seen)
        print(mod.double.__code__.co_consts)
    """
    proc = _run(script, tmp_path, RECOMPYLE_STRICT="1")
    assert proc.returncode == 0, proc.stderr
    events, consts = proc.stdout.splitlines()
    assert events == repr([(str(root / "__init__.py"), "double", "abs")])
    assert str(key << 32) not in consts  # the site ids carry the new key


def test_moved_package_gets_its_co_filename_fixed(package, tmp_path):
    """The package and its __pycache__ move; a fresh process reads the cache (the transform
    is broken in it) and everything names the new path."""
    name, root = package()
    probe = f"""
        import sys, traceback
        sys.path.insert(0, {{where!r}})
        import recompyle
        from recompyle import _core
        def broken(*a, **k):
            raise _core.InternalTransformError("transform called (cache miss)")
        if {{strict}}:
            _core.transform = broken
        recompyle.install("{name}.*")
        import {name} as mod
        seen = []
        with recompyle.handler(before=lambda e: seen.append(e.filename)):
            mod.double(1)
        print(mod.double.__code__.co_filename)
        print(mod.K.m.__code__.co_filename)
        print(seen[0])
        try:
            mod.boom()
        except ValueError:
            print(traceback.extract_tb(sys.exc_info()[2])[-1].filename)
    """
    first = _run(probe.format(where=str(tmp_path), strict=False), tmp_path)
    assert first.returncode == 0, first.stderr
    assert len(_cache_files(root)) == 1
    moved_parent = tmp_path / "moved"
    moved_parent.mkdir()
    shutil.move(str(root), str(moved_parent / name))
    second = _run(
        probe.format(where=str(moved_parent), strict=True), tmp_path, RECOMPYLE_STRICT="1"
    )
    assert second.returncode == 0, second.stderr
    new_path = str(moved_parent / name / "__init__.py")
    assert second.stdout.splitlines() == [new_path] * 4


# ------------------------------------------------------------------------ many writers


def test_concurrent_threads_store_and_load(tmp_path, writable):
    path = tmp_path / "conc.py"
    path.write_text(SOURCE)
    data = path.read_bytes()
    transformed = _core.transform(data, str(path), sys.version_info[:2])
    code = transformed.remap(compile(transformed.source, str(path), "exec"))
    assert transformed.register(str(path), "conc")
    errors: list[BaseException] = []
    loaded: list[object] = []

    def writer() -> None:
        try:
            for _ in range(40):
                table = transformed.site_table
                cache.store(str(path), data, -1, transformed.module_key, table, code)
        except BaseException as exc:  # noqa: B036
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(200):
                loaded.append(cache.load(str(path), data, "conc"))
        except BaseException as exc:  # noqa: B036
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    hits = [c for c in loaded if c is not None]
    assert hits, "the readers never saw a complete file"
    assert all(c.co_names == code.co_names for c in hits)
    assert cache.load(str(path), data, "conc") is not None
    assert [p.name for p in (tmp_path / "__pycache__").iterdir()] == [
        Path(cache.cache_path(str(path))).name
    ]


def test_concurrent_processes_import_a_cold_package(package, tmp_path):
    name, root = package()
    script = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import recompyle
        from recompyle import _core
        if sys.argv[1:] == ["cached-only"]:
            def broken(*a, **k):
                raise _core.InternalTransformError("transform called (cache miss)")
            _core.transform = broken
        recompyle.install("{name}.*")
        import {name} as mod
        seen = []
        with recompyle.handler(before=lambda e: seen.append(e.source)):
            mod.double(2)
        print(seen)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script)],
            cwd=tmp_path,
            env=_clean_env(RECOMPYLE_STRICT="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(8)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out, err) == (0, "['abs']\n", "")
    files = list((root / "__pycache__").iterdir())
    assert files == _cache_files(root) and len(files) == 1
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), "cached-only"],
        cwd=tmp_path,
        env=_clean_env(RECOMPYLE_STRICT="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "['abs']\n", "")


def test_site_table_round_trips_and_refuses_damage(tmp_path):
    data = b"def f(x):\n    return len(x) + len(str(x))\n\nf([1])\n"
    transformed = _core.transform(data, str(tmp_path / "t.py"), sys.version_info[:2])
    table = transformed.site_table
    key = transformed.module_key
    assert _core.register_site_table(key, str(tmp_path / "t.py"), "t", table)
    ids = [key << 32 | i for i in range(len(transformed.sites))]
    assert [_core.site_info(i)[2:] for i in ids] == [tuple(s) for s in transformed.sites]
    for damaged in (table[:-1], table + b"\0", b"", b"\xff" * 12):
        with pytest.raises(ValueError, match="malformed site table"):
            _core.register_site_table(key, str(tmp_path / "t.py"), "t", damaged)


def test_a_cached_site_table_is_decoded_on_first_use(tmp_path):
    """A warm import registers the stored table's bytes and decodes them at the first lookup
    (a listener's event, a report): a table of the right shape whose strings do not decode
    leaves its sites unknown, never wrong."""
    data = b"def f(x):\n    return len(x)\n"
    path = str(tmp_path / "lazy.py")
    transformed = _core.transform(data, path, sys.version_info[:2], 5)
    table = transformed.site_table
    key = transformed.module_key
    assert _core.register_site_table(key, path, "lazy", table)
    assert _core.site_info(key << 32)[:3] == (path, "lazy", 2)
    # One string is "len": the same length in bytes that are not UTF-8.
    bad = table.replace(b"len", b"\xff\xfe\xfd", 1)
    assert bad != table
    other = str(tmp_path / "other.py")
    assert _core.register_site_table(key + 1, other, "other", bad)
    with pytest.raises(ValueError, match="unknown site"):
        _core.site_info((key + 1) << 32)
