"""The ``RECOMPYLE_*`` environment variables that choose what a run instruments and reports,
read in one place for the two routes that obey them: ``python -m recompyle run``
(``recompyle.cli``, where options given on the command line win) and the start-up hook
(``recompyle._startup``, run from ``recompyle_startup.pth`` at interpreter start).

``RECOMPYLE_MODULES``        patterns of modules to instrument (see ``recompyle.finder``).
``RECOMPYLE_TRACK_GLOBALS``  patterns of modules whose globals are tracked (and which are
                             instrumented too; see ``recompyle.tracked_globals``).
``RECOMPYLE_FORMAT``         a report format (see ``recompyle.export``).
``RECOMPYLE_OUTPUT``         the file the report goes to (default: stderr).
``RECOMPYLE_OTEL``           ``1``: slow instrumented calls become OpenTelemetry spans
                             (``recompyle.otel``); ``0`` or unset: none.
``RECOMPYLE_OTEL_MIN_DURATION``  the minimum for a span (``250us``, ``5ms``; default 1 ms).
``RECOMPYLE_CACHE_CHECK``    how a warm import validates the bytecode cache (``recompyle.cache``):
                             ``stat`` (default) or ``hash``; read at every import
                             (``cache_check``), not into ``Config``.

Each value is read with surrounding whitespace removed, and an empty value is the same as an
unset one. What the values *mean* (a valid pattern, a known format) is checked by the route
that uses them, which words its own message (an error for the CLI, a warning at start-up).

The start-up hook imports this module in every interpreter that sets one of the variables,
children of a profiled run included, whose start-up time is measured
(``benches/bench_child_startup.py``): it imports nothing that start-up has not loaded
already (``os`` only; no ``typing``, no ``dataclasses``).
"""

import os

# A constant of our own rather than `typing.TYPE_CHECKING`: type checkers treat any name
# TYPE_CHECKING as true, and `typing` is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only (annotations are strings here: no `__future__` import either)
    from collections.abc import Mapping
    from typing import Optional

__all__ = [
    "ENV_CACHE_CHECK",
    "ENV_FORMAT",
    "ENV_MODULES",
    "ENV_OTEL",
    "ENV_OTEL_MIN_DURATION",
    "ENV_OUTPUT",
    "ENV_TRACK_GLOBALS",
    "Config",
    "cache_check",
    "from_env",
    "parse_duration",
]

ENV_MODULES = "RECOMPYLE_MODULES"
ENV_TRACK_GLOBALS = "RECOMPYLE_TRACK_GLOBALS"
ENV_FORMAT = "RECOMPYLE_FORMAT"
ENV_OUTPUT = "RECOMPYLE_OUTPUT"
ENV_OTEL = "RECOMPYLE_OTEL"
ENV_OTEL_MIN_DURATION = "RECOMPYLE_OTEL_MIN_DURATION"
ENV_CACHE_CHECK = "RECOMPYLE_CACHE_CHECK"


class Config:
    """What the environment asks a run for (a named, immutable record; a plain class because
    ``dataclasses`` and ``typing`` would be imported at start-up with it).

    ``modules`` and ``track_globals`` are comma-separated patterns ('' when unset);
    ``format`` and ``output`` are None when unset; ``otel`` is the raw ``RECOMPYLE_OTEL``
    ('' when unset: its meaning is checked by the route that uses it) and
    ``otel_min_duration`` None when unset.
    """

    __slots__ = ("modules", "track_globals", "format", "output", "otel", "otel_min_duration")
    modules: str
    track_globals: str
    format: "Optional[str]"
    output: "Optional[str]"
    otel: str
    otel_min_duration: "Optional[str]"

    def __init__(
        self,
        modules: str = "",
        track_globals: str = "",
        format: "Optional[str]" = None,  # noqa: A002 -- the variable's name
        output: "Optional[str]" = None,
        otel: str = "",
        otel_min_duration: "Optional[str]" = None,
    ) -> None:
        values = (modules, track_globals, format, output, otel, otel_min_duration)
        for attr, value in zip(self.__slots__, values):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Config is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Config is immutable")

    def _fields(self) -> "tuple[str, str, Optional[str], Optional[str], str, Optional[str]]":
        return (
            self.modules,
            self.track_globals,
            self.format,
            self.output,
            self.otel,
            self.otel_min_duration,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Config(modules={self.modules!r}, track_globals={self.track_globals!r}, "
            f"format={self.format!r}, output={self.output!r}, otel={self.otel!r}, "
            f"otel_min_duration={self.otel_min_duration!r})"
        )

    @property
    def asks_report(self) -> bool:
        """Whether a report is asked for: a format or an output file is set."""
        return self.format is not None or self.output is not None

    @property
    def report_variable(self) -> str:
        """The variable to name in a message about the report asked for: the output when
        it is set, else the format."""
        return ENV_OUTPUT if self.output is not None else ENV_FORMAT


def _value(environ: "Mapping[str, str]", name: str) -> str:
    return environ.get(name, "").strip()


def from_env(environ: "Optional[Mapping[str, str]]" = None) -> Config:
    """The configuration ``environ`` (by default ``os.environ``, read now) asks for."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    return Config(
        modules=_value(env, ENV_MODULES),
        track_globals=_value(env, ENV_TRACK_GLOBALS),
        format=_value(env, ENV_FORMAT) or None,
        output=_value(env, ENV_OUTPUT) or None,
        otel=_value(env, ENV_OTEL),
        otel_min_duration=_value(env, ENV_OTEL_MIN_DURATION) or None,
    )


def cache_check(environ: "Optional[Mapping[str, str]]" = None) -> str:
    """``RECOMPYLE_CACHE_CHECK`` as given (stripped, lower case; '' when unset). Read at each
    import rather than once, like the variables the loader consults, so that a program can
    change it between imports; what the value means (and the warning for an unknown one) is
    ``recompyle.cache.check_mode``'s."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    return _value(env, ENV_CACHE_CHECK).lower()


_DURATION_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_duration(text: str) -> int:
    """``50us``, ``1.5ms``, ``2s``, ``100ns`` (or a bare number of nanoseconds) in ns: the
    durations the CLI's options and the ``RECOMPYLE_OTEL_MIN_DURATION`` variable take."""
    value = text.strip().lower()
    unit = next(
        (u for u in sorted(_DURATION_UNITS, key=len, reverse=True) if value.endswith(u)), ""
    )
    number = value[: len(value) - len(unit)].strip()
    try:
        ns = float(number) * _DURATION_UNITS.get(unit, 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration like 50us, 1ms or 2s") from None
    if not ns >= 0 or ns == float("inf"):
        raise ValueError(f"{text!r} is not a duration like 50us, 1ms or 2s")
    return int(ns)
