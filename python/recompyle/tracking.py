"""The former name of ``recompyle.tracked_globals`` (tracked module globals), kept so that
``from recompyle.tracking import track_globals`` and the like go on working."""

from __future__ import annotations

from recompyle.qualnames import code_qualname
from recompyle.tracked_globals import is_tracked, track_globals, tracked_patterns

__all__ = ["code_qualname", "is_tracked", "track_globals", "tracked_patterns"]
