"""The cache stage: instrumented code kept on disk between runs, beside the plain ``.pyc``.

Transforming and compiling a module costs more than unmarshalling it, so the loader keeps
what it made in a file of its own, ``__pycache__/mod.cpython-311.recompyle-0.1.0-<config>.pyc``
(or under ``sys.pycache_prefix``: the name is ``importlib.util.cache_from_source``'s, with our
tag put before ``.pyc``). Instrumented code is never written under the plain name, which
plain interpreters and tools would load as if it were the module as written.

Layout: the 16-byte PEP 552 header of a *checked hash-based* pyc (magic number, flags
``0b11``, SipHash of the source bytes as ``importlib.util.source_hash`` computes it), then the
source's *stamp* (``st_mtime_ns`` and ``st_size``, 8 bytes each), then
``marshal.dumps((LAYOUT, module_key, site_table, code))``, then an 8-byte checksum of that
payload (``_core.cache_checksum``, little-endian). The checksum means a file cut short or
damaged on disk is never unmarshalled into code: it is a miss, and rewritten. CPython trusts
its own pycs' marshal data; we keep the check because the stamp that spares reading the
source vouches for the source, not for the cache file, and it is cheap: 0.66 million
instructions (about 0.1 ms) over the 38 modules of ``benches/bench_warm_import.py``, where
the SipHash it replaced took 4.0 million, a sixth of what that warm import added to a plain
one (``benches/README.md``). The site table
(``Transformed.site_table``: bytes the native module writes and reads, far cheaper to load
than tuples) and the module key travel with the code because the code's constants hold site
ids (``key << 32 | index``): a hit registers that table under that key, and if the key
belongs to another file in this process the caller transforms again under a fresh salt.

Validation, as CPython validates its default (timestamp) pycs: an import stats the source and
takes the cached code when the stamp matches, without reading the source, so a warm import
costs what a plain one does. When the stamp differs (a checkout or a copy touched the file),
the source is read and its hash decides: the same content re-stamps the cache file instead of
transforming again; other content is a miss. The trade-off is CPython's own: an edit that
keeps both the size and the mtime (set back with ``os.utime``) is not seen.
``RECOMPYLE_CACHE_CHECK=hash`` always validates by content, at the cost of reading and hashing
every source on every import. Two guards keep the stamp honest: it is taken *before* the
source is read (a file changed in between then fails the stamp check, never passes it), and a
file modified within the last tenth of a second (two seconds where mtimes are whole seconds)
gets no stamp (a zero stamp always fails), since a second write in the same clock tick would
keep its mtime; the next import re-stamps it.
Code compiled from bytes that were not read from the file (``source_to_code`` on an editor's
buffer) is always validated by content.

``RECOMPYLE_DEBUG=cache`` prints, for every instrumented module, why it missed the cache (or
that it re-stamped it) on stderr.

``<config>`` hashes everything that changes the emitted code: recompyle's version, the
transform's ``FORMAT_VERSION``, this layout, the interpreter's magic number and target
version, and the identity (size, mtime) of the native module that did the transform, so a
rebuilt extension never reads code an older build wrote.

Writing is best effort and never raises: ``sys.dont_write_bytecode``, a read-only
directory, a file where ``__pycache__`` should be or a full disk skip the write (reading
still works). Each writer fills a temporary file of its own (``recompyle.atomic_file``: a
random name created exclusively beside the target), then ``os.replace``s it into place, so
concurrent writers never interleave and a reader sees
either the old file or a complete new one.

Only modules that are loaded already at start-up are imported here (the start-up hook runs
before the program, see ``recompyle/__init__.py``).
"""

import _imp
import marshal
import os
import sys
import time
from _io import open_code
from importlib import _bootstrap_external

from recompyle import __version__, _core
from recompyle.atomic_file import write_atomically
from recompyle.config import cache_check

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only; `types` is not loaded at start-up on every version
    from types import CodeType

__all__ = ["Stamp", "cache_path", "check_mode", "load", "load_current", "stamp_of", "store"]

# Bump when the payload's shape changes.
LAYOUT = 5
# PEP 552 flags: bit 0 hash-based, bit 1 check the source.
_FLAGS = (0b11).to_bytes(4, "little")
_MAGIC = _bootstrap_external.MAGIC_NUMBER
# The key `importlib.util.source_hash` uses: the magic number read as a little-endian int
# (`_RAW_MAGIC_NUMBER` up to 3.13, `_imp.pyc_magic_number_token` from 3.14: the same number).
_HASH_KEY = int.from_bytes(_MAGIC, "little")
_STAMP = 16
_HEADER = 16 + _STAMP
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


def cache_path(
    source_path: str, optimize: int = -1, tracked: bool = False, plain: "str | None" = None
) -> "str | None":
    """Our cache file for ``source_path`` at optimization level ``optimize`` (-1: the
    interpreter's), or None when this interpreter keeps no bytecode caches. A module whose
    globals are tracked has code of its own, under a tag of its own. ``plain``: the plain
    ``.pyc``'s path at the interpreter's level when the caller has it (a module spec's
    ``cached``, which importlib computes anyway), sparing ``cache_from_source``."""
    if plain is None or optimize != -1:
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


class Stamp:
    """A source file's identity for validation: its ``st_mtime_ns`` and ``st_size``."""

    __slots__ = ("mtime_ns", "size")

    def __init__(self, mtime_ns: int, size: int) -> None:
        self.mtime_ns = mtime_ns
        self.size = size

    def pack(self) -> bytes:
        return self.mtime_ns.to_bytes(8, "little", signed=True) + self.size.to_bytes(8, "little")


#: No stamp: never matches a file (validation falls back to the content hash).
_NO_STAMP = bytes(_STAMP)
# A file modified this recently may be written again within the same mtime tick: a tenth of
# a second where timestamps have sub-second digits, two seconds where they are whole
# seconds (FAT's two-second clock, ext3, HFS+).
_RACY_NS = 100_000_000
_RACY_COARSE_NS = 2_000_000_000


def stamp_of(source_path: str) -> "Stamp | None":
    """The source's stamp, taken before its bytes are read; None if it cannot be had."""
    try:
        st = os.stat(source_path)
    except (OSError, ValueError):
        return None
    return Stamp(st.st_mtime_ns, st.st_size)


def check_mode() -> str:
    """``stat`` (default: a matching stamp is enough) or ``hash`` (always read and hash the
    source), from ``RECOMPYLE_CACHE_CHECK``. Another value is named in a warning once and
    validates by hash, the safe choice."""
    value = cache_check()
    if value in ("", "stat", "mtime"):
        return "stat"
    if value != "hash" and value not in _warned:
        _warned.add(value)
        import warnings

        warnings.warn(
            f"recompyle: RECOMPYLE_CACHE_CHECK={value!r} is not 'stat' or 'hash'; using 'hash'",
            RuntimeWarning,
            stacklevel=2,
        )
    return "hash"


_warned: "set[str]" = set()


def _debug() -> bool:
    return "cache" in os.environ.get("RECOMPYLE_DEBUG", "").split(",")


def _say(source_path: str, message: str) -> None:
    if _debug():
        print(f"recompyle: cache: {source_path}: {message}", file=sys.stderr)


def _read(cpath: str, source_path: str) -> "bytes | None":
    try:
        with open_code(cpath) as f:
            blob = f.read()
    except FileNotFoundError:
        _say(source_path, f"miss: no cache file {cpath}")
        return None
    except OSError as exc:
        _say(source_path, f"miss: cannot read {cpath} ({exc.strerror or exc})")
        return None
    if len(blob) < _HEADER + _TRAILER or blob[:4] != _MAGIC or blob[4:8] != _FLAGS:
        _say(source_path, "miss: not a recompyle cache file of this interpreter")
        return None
    return blob


def _unpack(blob: bytes, source_path: str, module: str) -> "CodeType | None":
    end = len(blob) - _TRAILER
    if _core.cache_checksum(blob, _HEADER, end) != int.from_bytes(blob[end:], "little"):
        _say(source_path, "miss: the cache file is damaged (payload checksum)")
        return None
    try:
        layout, key, table, code = marshal.loads(memoryview(blob)[_HEADER:end])
    except (EOFError, ValueError, TypeError):
        _say(source_path, "miss: the cache file is damaged (unmarshal)")
        return None
    if layout != LAYOUT or type(code) is not _CODE_TYPE or type(table) is not bytes:
        _say(source_path, "miss: the cache file has another layout")
        return None
    try:
        if not _core.register_site_table(key, source_path, module, table):
            _say(source_path, "miss: its site key is taken by another file in this process")
            return None
    except (TypeError, ValueError, OverflowError):
        _say(source_path, "miss: its site table is damaged")
        return None
    # The file may have moved (with its __pycache__) since the code was compiled.
    _imp._fix_co_filename(code, source_path)  # type: ignore[attr-defined]  # not in typeshed
    return code


def load_current(
    source_path: str,
    module: str,
    optimize: int = -1,
    tracked: bool = False,
    plain: "str | None" = None,
) -> "CodeType | None":
    """The cached code for the file as it is now, or None (the caller reads the source and
    transforms). A matching stamp is enough unless ``RECOMPYLE_CACHE_CHECK=hash``; otherwise
    the source is read, and the same content re-stamps the cache file. ``plain``: as for
    ``cache_path``."""
    cpath = cache_path(source_path, optimize, tracked, plain)
    if cpath is None:
        return None
    stamp = stamp_of(source_path)
    if stamp is None:
        return None
    blob = _read(cpath, source_path)
    if blob is None:
        return None
    stored = blob[16:_HEADER]
    if stored == stamp.pack() and stored != _NO_STAMP and check_mode() == "stat":
        return _unpack(blob, source_path, module)
    try:
        with open_code(source_path) as f:
            data = f.read()
    except OSError:
        return None
    if blob[8:16] != _hash(data):
        _say(source_path, "miss: the source changed since the cache was written")
        return None
    code = _unpack(blob, source_path, module)
    if code is not None and stored != stamp.pack():
        _say(source_path, "re-stamped: same content, new mtime or size")
        _write(cpath, blob[:16] + _stamp_bytes(stamp) + blob[_HEADER:], source_path)
    return code


def load(
    source_path: str, data: bytes, module: str, optimize: int = -1, tracked: bool = False
) -> "CodeType | None":
    """The cached code for these source bytes, with its sites registered, or None (absent,
    stale, damaged, or its module key taken in this process: the caller transforms).
    Validated by content: ``data`` need not be what the file holds now."""
    cpath = cache_path(source_path, optimize, tracked)
    if cpath is None:
        return None
    blob = _read(cpath, source_path)
    if blob is None:
        return None
    if blob[8:16] != _hash(data):
        _say(source_path, "miss: the source changed since the cache was written")
        return None
    return _unpack(blob, source_path, module)


def _stamp_bytes(stamp: "Stamp | None", now_ns: "int | None" = None) -> bytes:
    """What to record for ``stamp``: nothing for a file modified so recently that it could
    change again within the same mtime tick."""
    if stamp is None:
        return _NO_STAMP
    now_ns = time.time_ns() if now_ns is None else now_ns
    window = _RACY_COARSE_NS if stamp.mtime_ns % 1_000_000_000 == 0 else _RACY_NS
    if now_ns - stamp.mtime_ns < window:
        return _NO_STAMP
    return stamp.pack()


def store(
    source_path: str,
    data: bytes,
    optimize: int,
    module_key: int,
    site_table: bytes,
    code: "CodeType",
    tracked: bool = False,
    stamp: "Stamp | None" = None,
) -> bool:
    """Write the cache file for these source bytes; False if it was not written (never
    raises: a cache that cannot be written costs speed, not correctness). ``stamp`` is the
    source's, taken before ``data`` was read from it (None: ``data`` is not known to be the
    file's, so the cache is validated by content)."""
    if sys.dont_write_bytecode:
        return False
    cpath = cache_path(source_path, optimize, tracked)
    if cpath is None:
        return False
    try:
        payload = marshal.dumps((LAYOUT, module_key, site_table, code))
    except ValueError:
        return False
    checksum = _core.cache_checksum(payload).to_bytes(_TRAILER, "little")
    blob = b"".join((_MAGIC, _FLAGS, _hash(data), _stamp_bytes(stamp), payload, checksum))
    return _write(cpath, blob, source_path)


def _write(cpath: str, blob: bytes, source_path: str) -> bool:
    """Put ``blob`` at ``cpath`` atomically (``atomic_file.write_atomically``: a temporary
    file of its own, then ``os.replace``); False if it cannot be done."""
    if sys.dont_write_bytecode:
        return False
    try:
        mode = (os.stat(source_path).st_mode & 0o777) | 0o200
    except OSError:
        mode = 0o666
    if not _make_dirs(os.path.dirname(cpath)):
        return False
    try:
        write_atomically(cpath, blob, mode & 0o666)
    except OSError:
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
