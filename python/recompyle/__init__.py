"""recompyle: instrument any Python program without editing it.

Selected modules are rewritten at import time so that every call site goes through a native
trampoline, which reports *before* and *after* events to handlers and times calls for the
flat profiler. See ``recompyle.finder`` for how modules are selected and ARCHITECTURE.md for
the path of an import and of a call.
"""

from __future__ import annotations

from recompyle._core import CallEvent, Handler, HandlerWarning
from recompyle.finder import install, installed_patterns, uninstall
from recompyle.handlers import add_handler, handler, remove_handler
from recompyle.loader import RecompyleWarning, instrument_source
from recompyle.profiler import Profiler, SiteStats

__version__ = "0.1.0"

__all__ = [
    "CallEvent",
    "Handler",
    "HandlerWarning",
    "Profiler",
    "RecompyleWarning",
    "SiteStats",
    "__version__",
    "add_handler",
    "handler",
    "install",
    "installed_patterns",
    "instrument_source",
    "remove_handler",
    "uninstall",
]
