"""Whole-or-nothing file writes, shared by the report writer and the bytecode cache.

A reader must see either the old file or the complete new one, never half of it, so the
bytes go to a temporary file in the target's own directory (``os.replace`` is atomic only
within one file system) that is then renamed over the target. The temporary name is
unpredictable (random suffix) and created with ``O_CREAT | O_EXCL``, which fails on any
existing name, symlinks included: a link planted where the temporary file will be cannot
redirect the write to another file, and two writers (processes, threads, a forked child)
never share one temporary file.

Kept free of heavy imports (``tempfile`` pulls in ``random`` and ``shutil``): the cache
writes during imports.
"""

import errno
import os
import stat

__all__ = ["OutputPathError", "resolve_output", "write_atomically"]

_ATTEMPTS = 16
# O_EXCL already refuses an existing link; O_NOFOLLOW says so to the reader as well.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class OutputPathError(OSError):
    """The output path cannot be written as asked (a symlink loop); the message says why."""


def write_atomically(path: str, data: bytes, mode: int = 0o666) -> None:
    """Replace ``path`` with a file holding ``data`` (permissions ``mode`` less the umask).
    Raises ``OSError`` with nothing left behind if that cannot be done."""
    directory, name = os.path.split(path)
    fd, tmp = -1, ""
    for _ in range(_ATTEMPTS):
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode & 0o777)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path!r}")
    try:
        with open(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def resolve_output(output: str) -> "tuple[str, bool]":
    """Where a report or graph named ``output`` goes: ``(path, in_place)``. A symlink is
    written through to its target (the link stays); a device, FIFO or terminal is written in
    place (renaming over ``/dev/null`` would replace it with a regular file); anything else
    is replaced atomically. A symlink loop raises ``OutputPathError`` instead of having the
    loop replaced by a file."""
    try:
        st = os.stat(output)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputPathError(f"{output!r} is a symlink loop; not replacing it") from None
        raise
    target = os.path.realpath(output)
    return target, st is not None and not stat.S_ISREG(st.st_mode)
