"""The profile document's ``files`` section: each profiled file's SHA-256 and source text,
taken when the report is built, so that a report rendered later (``recompyle view``) shows
the source its column spans point into, and says when a file changed or went missing since.

The text is decoded as CPython decodes source (PEP 263 cookie, BOM, universal newlines):
the sites' columns are UTF-8 byte offsets into the lines of that text, as ``ast`` gives them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FileCheck", "check_files", "file_entries", "read_source"]

# Larger files keep their hash but not their text: a report must stay a few MB.
MAX_SOURCE_BYTES = 4 * 1024 * 1024


def read_source(data: bytes) -> str | None:
    """``data`` decoded as the interpreter decodes a source file (CRLF and a lone CR end
    lines as LF does); None if it cannot be. Not ``importlib.util.decode_source``: its
    newline decoder keeps back a final CR."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError, ValueError):
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def file_entries(paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{path: {"sha256", "source"}}`` for each readable file among ``paths`` (a path that
    is not a file, such as ``<string>``, is left out)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        if path in out:
            continue
        data = _read(path)
        if data is None:
            continue
        source = read_source(data) if len(data) <= MAX_SOURCE_BYTES else None
        out[path] = {"sha256": hashlib.sha256(data).hexdigest(), "source": source}
    return out


@dataclass(frozen=True)
class FileCheck:
    """A file of a saved report as found now. ``status``: ``same`` (the bytes hash as
    recorded), ``changed``, ``missing`` (recorded, now unreadable), ``unrecorded`` (the
    report has no hash for it: read now, unverified) or ``unavailable`` (neither recorded
    nor readable). ``source`` is the text read now when the report holds none and the file
    is unchanged or unrecorded. ``note`` says it in a sentence, or is empty."""

    status: str
    note: str
    source: str | None = None


def check_files(doc: Mapping[str, Any]) -> dict[str, FileCheck]:
    """Compare every file of report ``doc`` (its ``files`` section and its sites' files)
    with the file on disk now."""
    files = doc.get("files")
    recorded: Mapping[str, Any] = files if isinstance(files, Mapping) else {}
    paths = list(recorded)
    for site in doc.get("sites") or ():
        if isinstance(site, Mapping) and site.get("file") not in recorded:
            paths.append(str(site.get("file")))
    checks: dict[str, FileCheck] = {}
    for path in dict.fromkeys(paths):
        entry = recorded.get(path)
        data = _read(path)
        digest = None if data is None else hashlib.sha256(data).hexdigest()
        has_text = isinstance(entry, Mapping) and isinstance(entry.get("source"), str)
        now = None if data is None or has_text else read_source(data)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("sha256"), str):
            if data is None:
                checks[path] = FileCheck("unavailable", "not in the report and not readable now")
            else:
                checks[path] = FileCheck(
                    "unrecorded", "read now: the report has no hash to check it against", now
                )
        elif data is None:
            checks[path] = FileCheck("missing", "missing since the report was written")
        elif digest != entry["sha256"]:
            checks[path] = FileCheck("changed", "changed since the report was written")
        else:
            checks[path] = FileCheck("same", "", now)
    return checks
