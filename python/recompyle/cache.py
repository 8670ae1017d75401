"""The cache stage: instrumented code kept on disk between runs, beside the plain ``.pyc``.

Transforming and compiling a module costs more than unmarshalling it, so the loader keeps
what it made in a file of its own, ``__pycache__/mod.cpython-311.recompyle-0.1.0-<config>.pyc``
(or under ``sys.pycache_prefix``: the name is ``importlib.util.cache_from_source``'s, with our
tag put before ``.pyc``). Instrumented code is never written under the plain name, which
plain interpreters and tools would load as if it were the module as written.

Layout: the 16-byte PEP 552 header of a *checked hash-based* pyc (magic number, flags
``0b11``, SipHash of the source bytes as ``importlib.util.source_hash`` computes it), then
``marshal.dumps((LAYOUT, module_key, site_table, code))``, then 8 bytes of the same hash over that
payload. The source hash, not the mtime, decides whether the file is current: a checkout,
a copy or a coarse clock cannot make it serve stale code. The payload hash means a file cut
short or damaged on disk is never unmarshalled into code: it is a miss, and rewritten.
The site table (``Transformed.site_table``: bytes the native module writes and reads, far
cheaper to load than tuples) and the module key travel with the code because the code's
constants hold site ids (``key << 32 | index``): a hit registers that table under that key,
and if the key belongs to another file in this process the caller transforms again under a
fresh salt.

``<config>`` hashes everything that changes the emitted code: recompyle's version, the
transform's ``FORMAT_VERSION``, this layout, the interpreter's magic number and target
version, and the identity (size, mtime) of the native module that did the transform, so a
rebuilt extension never reads code an older build wrote.

Writing is best effort and never raises: ``sys.dont_write_bytecode``, a read-only
directory, a file where ``__pycache__`` should be or a full disk skip the write (reading
still works). Each writer fills a temporary file whose name holds its process and thread,
then ``os.replace``s it into place, so concurrent writers never interleave and a reader sees
either the old file or a complete new one.

Only modules that are loaded already at start-up are imported here (the start-up hook runs
before the program, see ``recompyle/__init__.py``).
"""

import _imp
import marshal
import os
import sys
from _io import open_code
from _thread import get_ident
from importlib import _bootstrap_external

from recompyle import __version__, _core

if False:  # typing only; `types` is not loaded at start-up on every version
    from types import CodeType

__all__ = ["cache_path", "load", "store"]

# Bump when the payload's shape changes.
LAYOUT = 2
# PEP 552 flags: bit 0 hash-based, bit 1 check the source.
_FLAGS = (0b11).to_bytes(4, "little")
_MAGIC = _bootstrap_external.MAGIC_NUMBER
# The key `importlib.util.source_hash` uses: the magic number read as a little-endian int
# (`_RAW_MAGIC_NUMBER` up to 3.13, `_imp.pyc_magic_number_token` from 3.14: the same number).
_HASH_KEY = int.from_bytes(_MAGIC, "little")
_HEADER = 16
_TRAILER = 8
_CODE_TYPE = type(compile("", "", "exec", dont_inherit=True))

_tags: "dict[bool, str]" = {}


def _hash(data: "bytes | memoryview") -> bytes:
    return _imp.source_hash(_HASH_KEY, data)


def config_tag(tracked: bool = False) -> str:
    """``recompyle-<version>-<config hash>``: part of every cache file name, so that two
    configurations (or builds) sharing a ``__pycache__`` never read each other's files.
    ``tracked``: the module's globals are tracked, which adds reporting code to it."""
    tag = _tags.get(tracked)
    if tag is None:
        try:
            st = os.stat(_core.__file__)
            build = f"{st.st_size}:{st.st_mtime_ns}"
        except (OSError, AttributeError, TypeError):
            build = "unknown"
        parts = [
            __version__,
            str(_core.FORMAT_VERSION),
            str(LAYOUT),
            _MAGIC.hex(),
            "{}.{}".format(*sys.version_info[:2]),
            build,
            "track-globals" if tracked else "",
        ]
        digest = _hash("\0".join(parts).encode()).hex()[:16]
        tag = _tags[tracked] = f"recompyle-{__version__}-{digest}"
    return tag


def cache_path(source_path: str, optimize: int = -1, tracked: bool = False) -> "str | None":
    """Our cache file for ``source_path`` at optimization level ``optimize`` (-1: the
    interpreter's), or None when this interpreter keeps no bytecode caches. A module whose
    globals are tracked has code of its own, under a tag of its own."""
    try:
        if optimize == -1:
            plain = _bootstrap_external.cache_from_source(source_path)
        else:
            level = "" if optimize == 0 else optimize
            plain = _bootstrap_external.cache_from_source(source_path, optimization=level)
    except (NotImplementedError, ValueError, TypeError):
        return None
    if not plain.endswith(".pyc"):
        return None
    return f"{plain[:-4]}.{config_tag(tracked)}.pyc"


def load(
    source_path: str, data: bytes, module: str, optimize: int = -1, tracked: bool = False
) -> "CodeType | None":
    """The cached code for these source bytes, with its sites registered, or None (absent,
    stale, damaged, or its module key taken in this process: the caller transforms)."""
    cpath = cache_path(source_path, optimize, tracked)
    if cpath is None:
        return None
    try:
        with open_code(cpath) as f:
            blob = f.read()
    except OSError:
        return None
    if (
        len(blob) < _HEADER + _TRAILER
        or blob[:4] != _MAGIC
        or blob[4:8] != _FLAGS
        or blob[8:16] != _hash(data)
    ):
        return None
    view = memoryview(blob)
    payload = view[_HEADER:-_TRAILER]
    if _hash(payload) != blob[-_TRAILER:]:
        return None
    try:
        layout, key, table, code = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if layout != LAYOUT or type(code) is not _CODE_TYPE or type(table) is not bytes:
        return None
    try:
        if not _core.register_site_table(key, source_path, module, table):
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    # The file may have moved (with its __pycache__) since the code was compiled.
    _imp._fix_co_filename(code, source_path)
    return code


def store(
    source_path: str,
    data: bytes,
    optimize: int,
    module_key: int,
    site_table: bytes,
    code: "CodeType",
    tracked: bool = False,
) -> bool:
    """Write the cache file for these source bytes; False if it was not written (never
    raises: a cache that cannot be written costs speed, not correctness)."""
    if sys.dont_write_bytecode:
        return False
    cpath = cache_path(source_path, optimize, tracked)
    if cpath is None:
        return False
    try:
        payload = marshal.dumps((LAYOUT, module_key, site_table, code))
    except ValueError:
        return False
    blob = b"".join((_MAGIC, _FLAGS, _hash(data), payload, _hash(payload)))
    try:
        mode = (os.stat(source_path).st_mode & 0o777) | 0o200
    except OSError:
        mode = 0o666
    if not _make_dirs(os.path.dirname(cpath)):
        return False
    tmp = f"{cpath}.{os.getpid()}.{get_ident()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o666)
    except OSError:
        return False
    try:
        with open(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, cpath)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


def _make_dirs(directory: str) -> bool:
    """Create ``directory`` and missing parents as ``SourceFileLoader.set_data`` does; False
    when that is impossible (read-only, or a file stands where a directory should)."""
    missing = []
    while directory and not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        missing.append(directory)
        directory = parent
    for part in reversed(missing):
        try:
            os.mkdir(part)
        except FileExistsError:
            if not os.path.isdir(part):
                return False  # a file where __pycache__ should be
        except OSError:
            return False
    return True
