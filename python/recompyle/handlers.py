"""The handler stage: Python callbacks around every instrumented call.

Registration lives in the native core so the trampoline can check it without calling
Python. ``before(event)`` runs before the call with the callee and arguments;
``after(event)`` runs once it returned (``event.result``) or raised (``event.exception``,
re-raised to the caller unchanged after the handlers ran). A handler that raises is reported
once as a ``HandlerWarning`` and the program goes on; calls a handler makes are not reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Optional

from recompyle._core import CallEvent, Handler, add_handler

__all__ = ["add_handler", "handler", "remove_handler"]

Callback = Optional[Callable[[CallEvent], object]]


def remove_handler(h: Handler) -> None:
    """Unregister ``h``; removing twice is harmless."""
    h.remove()


@contextmanager
def handler(before: Callback = None, after: Callback = None) -> Iterator[Handler]:
    """Register ``before``/``after`` for the duration of a ``with`` block."""
    h = add_handler(before=before, after=after)
    try:
        yield h
    finally:
        h.remove()
