"""The handler stage: Python callbacks around every instrumented call.

Registration lives in the native core so the call-site selector can check it without calling
Python. ``before(event)`` runs before the call with the callee and arguments;
``after(event)`` runs once it returned (``event.result``) or raised (``event.exception``,
re-raised to the caller unchanged after the handlers ran). ``globals(event)`` runs for every
read, write and deletion of a global of a tracked module (``recompyle.tracked_globals``) with a
``GlobalEvent``. A handler that raises an ``Exception`` is reported once as a
``HandlerWarning`` and the program goes on; any other ``BaseException`` (``KeyboardInterrupt``
from Ctrl-C, ``SystemExit``) is the program's and is raised at the call or global access, as
if it had raised it. Calls a handler makes, and globals it reads, are not reported.

``callee=`` (a callable, or a qualified name such as ``"Client.send"`` or
``"myapp.client.Client.send"``) and ``module=`` (patterns over the module the call site is
in) restrict ``before``/``after`` to some calls. They are checked natively
(``crates/recompyle_python/src/filter.rs``) before any event is made, so the calls no
handler wants cost a few comparisons, not a Python call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Optional, Union

from recompyle._core import CallEvent, GlobalEvent, Handler, add_handler

__all__ = ["add_handler", "handler", "remove_handler"]

Callback = Optional[Callable[[CallEvent], object]]
GlobalsCallback = Optional[Callable[[GlobalEvent], object]]


def remove_handler(h: Handler) -> None:
    """Unregister ``h``; removing twice is harmless."""
    h.remove()


@contextmanager
def handler(
    before: Callback = None,
    after: Callback = None,
    *,
    globals: GlobalsCallback = None,
    callee: Union[Callable[..., object], str, None] = None,
    module: Optional[str] = None,
) -> Iterator[Handler]:
    """Register ``before``/``after`` (and ``globals``) for the duration of a ``with`` block;
    ``callee`` and ``module`` filter the calls, as for ``add_handler``."""
    h = add_handler(before=before, after=after, globals=globals, callee=callee, module=module)
    try:
        yield h
    finally:
        h.remove()
