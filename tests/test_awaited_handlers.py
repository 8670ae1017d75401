"""Handlers at awaited call sites (``await f(x)``): the call ends when its ``await`` does.

The after-event of an awaited call fires when the awaited result is ready (or the await
raised, was cancelled or closed), with that value or exception; the profiler's record, if
one runs too, spans the same wait. The program sees what it sees without recompyle."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import warnings
import weakref

import pytest

import recompyle

PROGRAM = """
import asyncio

class Suspend:
    def __await__(self):
        sent = yield "suspended"
        return sent

class BadAwait:
    def __await__(self):
        return 42

class Box:
    def __init__(self, value):
        self.value = value

    async def get(self, extra=0):
        await asyncio.sleep(0)
        return self.value + extra

def suspend(*kept):
    return Suspend()

def plain():
    return 7

async def slow(delay, tag="slow"):
    await asyncio.sleep(delay)
    return tag

async def boom(message):
    await asyncio.sleep(0)
    raise ValueError(message)

async def waits(delay):
    return await slow(delay)

async def catches():
    try:
        await boom("inner")
    except ValueError as e:
        return e

async def method_call(box):
    return await box.get(1)

async def cancelled():
    task = asyncio.ensure_future(slow(10, "never"))
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"

async def timed_out():
    try:
        await asyncio.wait_for(slow(10, "never"), 0.01)
    except asyncio.TimeoutError:
        return "timed out"

async def stepped():
    return await suspend()

async def not_awaitable():
    try:
        await plain()
    except TypeError as e:
        return e

async def bad_await():
    try:
        await BadAwait()
    except TypeError as e:
        return e

async def interleaved(i):
    total = 0
    for k in range(3):
        total += await Box(i).get(k)
    return total

async def many():
    return await asyncio.gather(*[interleaved(i) for i in range(50)])

class Marker:
    pass

async def holds(marker):
    return await suspend(marker)
"""


@pytest.fixture
def prog(instrumented):
    return instrumented(PROGRAM, "awprog")


class Recorder:
    """A handler pair recording (phase, source, line, result, exception, seconds since its
    before-event) for the calls of the program's module."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._started: dict[int, float] = {}

    def before(self, event) -> None:
        self._started[id(event)] = time.perf_counter()
        self.events.append(("before", event.source))

    def after(self, event) -> None:
        waited = time.perf_counter() - self._started.pop(id(event))
        self.events.append(
            ("after", event.source, event.result, event.exception, waited, event.args)
        )

    def afters(self, source: str) -> list[tuple]:
        return [e for e in self.events if e[0] == "after" and e[1] == source]


def test_after_fires_when_the_await_ends_with_the_awaited_value(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        assert asyncio.run(prog.waits(0.05)) == "slow"
    ((_, _, result, exception, waited, args),) = rec.afters("slow")
    assert (result, exception, args) == ("slow", None, (0.05,))
    assert waited >= 0.05, "the time between before and after is the wait"
    # The awaited work's own calls end inside the awaited call.
    order = [e[:2] for e in rec.events]
    assert order.index(("after", "asyncio.sleep")) < order.index(("after", "slow"))
    assert order.index(("before", "slow")) < order.index(("before", "asyncio.sleep"))


def test_after_sees_the_exception_the_program_catches(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        caught = asyncio.run(prog.catches())
    ((_, _, result, exception, _, _),) = rec.afters("boom")
    assert result is None and exception is caught
    assert isinstance(caught, ValueError) and caught.args == ("inner",)


def test_method_and_gather_sites_get_their_awaited_results(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        assert asyncio.run(prog.method_call(prog.Box(5))) == 6
        results = asyncio.run(prog.many())
    assert results == [3 * i + 3 for i in range(50)]
    assert [e[2] for e in rec.afters("box.get")] == [6]
    gets = rec.afters("Box(i).get")
    assert len(gets) == 150 and all(e[3] is None for e in gets)
    assert sorted(e[2] for e in gets) == sorted(i + k for i in range(50) for k in range(3))
    (gathered,) = rec.afters("asyncio.gather")
    assert gathered[2] == results
    assert len([e for e in rec.events if e[0] == "before"]) == len(
        [e for e in rec.events if e[0] == "after"]
    ), "every before has its after"


def test_cancellation_and_timeouts_reach_after_as_cancelled_error(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        assert asyncio.run(prog.cancelled()) == "cancelled"
        assert asyncio.run(prog.timed_out()) == "timed out"
    sleeps = [e for e in rec.afters("asyncio.sleep") if e[5] == (10,)]
    assert len(sleeps) == 2
    assert all(isinstance(e[3], asyncio.CancelledError) for e in sleeps)
    # ensure_future(slow(...)) and wait_for(slow(...)) only create the coroutine at the
    # site: those calls end at their return.
    slows = [e for e in rec.afters("slow") if e[5] == (10, "never")]
    assert len(slows) == 2 and all(asyncio.iscoroutine(e[2]) for e in slows)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_asyncio_timeout_cancels_the_awaited_call(instrumented):
    mod = instrumented(
        """
        import asyncio

        async def slow():
            await asyncio.sleep(10)

        async def main():
            try:
                async with asyncio.timeout(0.01):
                    await slow()
            except TimeoutError as e:
                return e
        """,
        "awtimeout",
    )
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        assert isinstance(asyncio.run(mod.main()), TimeoutError)
    ((_, _, result, exception, waited, _),) = rec.afters("slow")
    assert result is None and isinstance(exception, asyncio.CancelledError)
    assert waited >= 0.01


def test_send_throw_and_close_of_the_awaitable(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        coro = prog.stepped()
        assert coro.send(None) == "suspended"
        assert type(coro.cr_await).__name__ == "AwaitedCall"
        assert rec.afters("suspend") == [], "not over while suspended"
        with pytest.raises(StopIteration) as stop:
            coro.send("sent in")
        assert stop.value.value == "sent in"

        coro = prog.stepped()
        coro.send(None)
        thrown = KeyError("thrown in")
        with pytest.raises(KeyError) as info:
            coro.throw(thrown)
        assert info.value is thrown

        coro = prog.stepped()
        coro.send(None)
        coro.close()
    results = [(e[2], e[3]) for e in rec.afters("suspend")]
    assert results[0] == ("sent in", None)
    assert results[1] == (None, thrown)
    assert results[2][0] is None and type(results[2][1]) is GeneratorExit


def test_a_non_awaitable_result_ends_the_call_at_its_return(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        error = asyncio.run(prog.not_awaitable())
    assert isinstance(error, TypeError) and "await" in str(error)
    ((_, _, result, exception, _, _),) = rec.afters("plain")
    assert (result, exception) == (7, None), "the call returned; its await raised after it"


def test_a_bad_await_ends_the_call_with_the_await_s_error(prog):
    rec = Recorder()
    with recompyle.handler(before=rec.before, after=rec.after):
        error = asyncio.run(prog.bad_await())
    assert isinstance(error, TypeError) and "__await__" in str(error)
    ((_, _, result, exception, _, _),) = rec.afters("BadAwait")
    assert result is None and exception is error


def test_a_raising_after_handler_is_contained_at_the_await(prog):
    def bad(event):
        raise ValueError("handler bug")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with recompyle.handler(after=bad) as h:
            assert asyncio.run(prog.waits(0)) == "slow"
            assert isinstance(asyncio.run(prog.catches()), ValueError)
    relevant = [w for w in caught if issubclass(w.category, recompyle.HandlerWarning)]
    assert len(relevant) == 1 and "handler bug" in str(relevant[0].message)
    assert h.errors >= 4


def test_an_after_handler_s_keyboard_interrupt_is_raised_at_the_await(prog):
    def interrupt(event):
        if event.source == "slow":
            raise KeyboardInterrupt("from the handler")

    with recompyle.handler(after=interrupt):
        coro = prog.waits(0)
        with pytest.raises(KeyboardInterrupt, match="from the handler"):
            asyncio.run(coro)


@pytest.mark.parametrize("tree", [True, False], ids=["tree", "flat_only"])
def test_with_the_profiler_the_record_and_the_event_span_the_wait(prog, tree):
    rec = Recorder()
    with recompyle.Profiler(tree=tree) as p, recompyle.handler(before=rec.before, after=rec.after):
        assert asyncio.run(prog.waits(0.05)) == "slow"
    ((_, _, result, _, waited, _),) = rec.afters("slow")
    assert result == "slow" and waited >= 0.05
    row = next(r for r in p.stats() if r.callee == "slow")
    assert row.calls == 1 and row.total_ns >= 50_000_000
    if not tree:
        return
    nodes = [n for r in p.tree() for n in _walk(r.children)]
    slow = next(n for n in nodes if n.callee == "slow")
    assert [c.callee for c in slow.children] == ["asyncio.sleep"]
    assert slow.total_ns >= 50_000_000


@pytest.mark.parametrize("tree", [True, False], ids=["tree", "flat_only"])
def test_the_profiler_times_the_wait_when_no_handler_wants_the_call(prog, tree):
    # A handler filtered to other calls: the awaited call is made on the handler path
    # without an event, and the profiler still times it until its result is ready.
    seen = []
    with recompyle.Profiler(tree=tree) as p, recompyle.handler(after=seen.append, callee="plain"):
        assert asyncio.run(prog.waits(0.05)) == "slow"
    assert seen == []
    row = next(r for r in p.stats() if r.callee == "slow")
    assert row.calls == 1 and row.total_ns >= 50_000_000


def test_a_kept_event_gets_the_awaited_result_and_a_before_only_handler_adds_nothing(prog):
    kept = []
    with recompyle.handler(before=kept.append, callee=prog.slow):
        assert asyncio.run(prog.waits(0)) == "slow"
    (event,) = kept
    assert (event.phase, event.result, event.args) == ("after", "slow", (0,))

    with recompyle.handler(before=lambda e: None):
        coro = prog.stepped()
        coro.send(None)
        # Nobody sees the event after the call: the awaitable is the callee's own.
        assert type(coro.cr_await).__name__ == "generator"
        coro.close()


def test_an_abandoned_awaited_call_with_handlers_is_collected(prog):
    # The event holds the call's arguments; the marker holds the awaiting coroutine: a
    # cycle through the event, which the collector must see.
    with recompyle.handler(after=lambda e: None):
        marker = prog.Marker()
        coro = prog.holds(marker)
        assert coro.send(None) == "suspended"
        assert type(coro.cr_await).__name__ == "AwaitedCall"
        marker.coro = coro
        alive = weakref.ref(marker)
        del coro, marker
        gc.collect()
    assert alive() is None


def test_call_log_records_awaited_values(prog):
    from recompyle.call_log import CallLog

    with CallLog() as log:
        assert asyncio.run(prog.waits(0)) == "slow"
    (call,) = log.to("slow")
    assert call.finished and call.result == "slow" and call.exception is None


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n.children)
