"""A record of the instrumented calls made while it listens, for assertions in tests.

``CallLog`` registers one handler (``recompyle.add_handler``) and turns each pair of
*before*/*after* events into a ``RecordedCall``: what was called, where, with which
arguments, and what came back or was raised. It is what the pytest plugin's
``recompyle_calls`` fixture hands a test, so that "this handler called the API twice with
these arguments" is one assertion. Only instrumented modules report calls (see
``recompyle.install``); a call a handler makes is never reported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from recompyle._core import CallEvent, Handler, add_handler

__all__ = ["CallLog", "RecordedCall", "RecordedEvent"]


@dataclass
class RecordedCall:
    """One instrumented call. ``line`` is 1-based, ``col`` a 0-based UTF-8 byte offset (as
    ``ast``). ``finished`` turns true when the call returned (``result``) or raised
    (``exception``)."""

    callee: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    file: str | None
    line: int | None
    col: int | None
    module: str | None
    caller: str | None
    thread: str
    result: Any = None
    exception: BaseException | None = None
    finished: bool = False

    @property
    def raised(self) -> bool:
        return self.exception is not None


@dataclass(frozen=True)
class RecordedEvent:
    """A *before* or *after* event, in the order they happened (``phase``)."""

    phase: str
    call: RecordedCall


Target = Union[str, Callable[..., Any]]


def _matches(call: RecordedCall, target: Target) -> bool:
    if isinstance(target, str):
        names = (call.callee, getattr(call.func, "__qualname__", None))
        return target in names or getattr(call.func, "__name__", None) == target
    func = call.func
    return func is target or getattr(func, "__func__", None) is target


@dataclass
class CallLog:
    """Calls recorded from ``start`` to ``stop``; a context manager too."""

    calls: list[RecordedCall] = field(default_factory=list)
    events: list[RecordedEvent] = field(default_factory=list)
    _handler: Handler | None = field(default=None, init=False, repr=False)
    _open: dict[int, RecordedCall] = field(default_factory=dict, init=False, repr=False)

    def start(self) -> CallLog:
        if self._handler is None:
            self._handler = add_handler(before=self._before, after=self._after)
        return self

    def stop(self) -> None:
        if self._handler is not None:
            self._handler.remove()
            self._handler = None

    def _before(self, event: CallEvent) -> None:
        qualname: str = getattr(event.func, "__qualname__", repr(event.func))
        call = RecordedCall(
            callee=event.source or qualname,
            func=event.func,
            args=tuple(event.args),
            kwargs=dict(event.kwargs),
            file=event.filename,
            line=event.lineno,
            col=event.col_offset,
            module=event.module,
            caller=event.caller,
            thread=threading.current_thread().name,
        )
        # The same event object is handed to a call's *before* and *after*, and lives while
        # the call runs: its id pairs them, however calls interleave (threads, tasks).
        self._open[id(event)] = call
        self.calls.append(call)
        self.events.append(RecordedEvent("before", call))

    def _after(self, event: CallEvent) -> None:
        call = self._open.pop(id(event), None)
        if call is None:
            return  # the call began before the log started
        call.exception = event.exception
        call.result = None if call.exception is not None else event.result
        call.finished = True
        self.events.append(RecordedEvent("after", call))

    def to(self, target: Target) -> list[RecordedCall]:
        """The calls of ``target``: a callable (the function itself, or a method's function),
        or a name (the call's source text such as ``"client.get"``, or the callee's
        ``__qualname__`` or ``__name__``)."""
        return [call for call in self.calls if _matches(call, target)]

    def clear(self) -> None:
        self.calls.clear()
        self.events.clear()

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[RecordedCall]:
        return iter(list(self.calls))

    def __enter__(self) -> CallLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
