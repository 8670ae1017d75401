"""The report formats, as a table: which format a name or an output file means, whether it
is binary (never written to a terminal) and whether it needs a recorded timeline.

Every exporter is a module here with ``render(doc) -> str | bytes`` over the profile
document (``recompyle.report``'s version-2 JSON object, as a dict). Modules are imported
only when their format is used: the start-up hook consults this table in every profiled
interpreter, and whatever it imports eagerly is one module the user could no longer
instrument.
"""

from __future__ import annotations

import os

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: the start-up hook reads this table, keep it light
    from typing import Any, Optional

__all__ = ["FORMATS", "Format", "format_for_output", "get_format", "names"]


class Format:
    """One report format (a named, immutable record; a plain class because ``dataclasses``
    and ``typing`` would be imported at start-up with it).

    ``module`` is the exporter under ``recompyle.export`` (None for the formats that
    ``recompyle.report`` renders itself); ``patterns`` select the format from an output
    file's base name when ``--format`` is not given (``*.ext``, ``prefix*`` or an exact
    name); a ``binary`` format is never written to a terminal; a format that
    ``needs_timeline`` turns on the timeline recording (begin and end of each call), which
    the aggregate tree cannot stand in for.
    """

    __slots__ = ("name", "module", "patterns", "binary", "needs_timeline", "description")
    name: str
    module: Optional[str]
    patterns: tuple[str, ...]
    binary: bool
    needs_timeline: bool
    description: str

    def __init__(
        self,
        name: str,
        module: Optional[str],
        patterns: tuple[str, ...],
        binary: bool,
        needs_timeline: bool,
        description: str,
    ) -> None:
        for attr, value in zip(
            self.__slots__, (name, module, patterns, binary, needs_timeline, description)
        ):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Format is immutable")

    def __repr__(self) -> str:
        return f"Format({self.name!r})"

    def matches(self, output: str) -> int:
        """How specifically this format's patterns match the file name ``output`` (the
        length of the matching pattern; 0: no match)."""
        base = os.path.basename(output).lower()
        best = 0
        for pattern in self.patterns:
            if pattern.startswith("*"):
                hit = base.endswith(pattern[1:])
            elif pattern.endswith("*"):
                hit = base.startswith(pattern[:-1])
            else:
                hit = base == pattern
            if hit:
                best = max(best, len(pattern))
        return best

    def render(self, doc: dict[str, Any], *, min_percent: Optional[float] = None) -> str | bytes:
        """The document in this format. ``min_percent`` is for the formats that hide small
        nodes (``tree``); the others ignore it."""
        if self.module is None:
            raise ValueError(f"the {self.name} format is rendered by recompyle.report")
        import importlib

        module = importlib.import_module(f"recompyle.export.{self.module}")
        if min_percent is not None and self.module == "tree_text":
            return module.render(doc, min_percent=min_percent)
        return module.render(doc)


FORMATS: tuple[Format, ...] = (
    Format("text", None, (), False, False, "flat table of call sites"),
    Format("json", None, ("*.json",), False, False, "the profile document (JSON)"),
    Format(
        "speedscope",
        "speedscope",
        ("*.speedscope.json",),
        False,
        False,
        "speedscope's file format: a sampled profile per thread/task, evented with --timeline",
    ),
    Format(
        "chrome",
        "chrome",
        ("*.trace.json",),
        False,
        True,
        "Chrome Trace Event JSON for Perfetto and chrome://tracing (records a timeline)",
    ),
    Format(
        "pstats",
        "pstats",
        ("*.prof", "*.pstats"),
        True,
        False,
        "cProfile's marshal'd stats for pstats, snakeviz, gprof2dot",
    ),
    Format(
        "callgrind",
        "callgrind",
        ("callgrind.out", "callgrind.out.*"),
        False,
        False,
        "callgrind profile for KCachegrind and gprof2dot -f callgrind",
    ),
    Format(
        "collapsed",
        "collapsed",
        ("*.collapsed", "*.folded"),
        False,
        False,
        "collapsed stacks for flamegraph.pl, inferno, speedscope",
    ),
    Format("tree", "tree_text", (), False, False, "indented call tree for the terminal"),
    Format(
        "html",
        "html",
        ("*.html", "*.htm"),
        False,
        False,
        "one self-contained page: flame graph, call-site table, annotated source",
    ),
)

_BY_NAME = {f.name: f for f in FORMATS}


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get_format(name: str) -> Format:
    """The format called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose from {', '.join(_BY_NAME)}") from None


def format_for_output(output: Optional[str]) -> Format:
    """The format an output file's name asks for: the most specific matching pattern
    (``x.speedscope.json`` is speedscope, not json), else ``text``."""
    best, best_len = _BY_NAME["text"], 0
    for fmt in FORMATS if output else ():
        length = fmt.matches(output or "")
        if length > best_len:
            best, best_len = fmt, length
    return best
