"""Awaited calls stepped by hand: values sent in, exceptions thrown in, closing, odd return
values (a tuple, an exception, a StopIteration) and iterators without throw/close behave as
plain (an awaited call ends when its await does, with or without handlers)."""
import asyncio
import types


class Suspend:
    """Yields once, returns what was sent in (or a fixed odd value)."""

    def __init__(self, result=None):
        self.result = result

    def __await__(self):
        sent = yield "suspended"
        return self.result if self.result is not None else sent


class NoThrow:
    """An __await__ iterator without send/throw/close."""

    def __await__(self):
        return iter(["a", "b"])


def suspend(result=None):
    return Suspend(result)


def no_throw():
    return NoThrow()


@types.coroutine
def generator_based(log):
    try:
        got = yield "gen"
    except KeyError as e:
        log.append(f"gen caught {e!r}")
        got = "recovered"
    finally:
        log.append("gen finally")
    return got


async def one(result=None):
    return await suspend(result)


async def caught(log):
    try:
        return await suspend()
    except ValueError as e:
        log.append(f"caught {e!r}")
        return "handled"
    finally:
        log.append("one finally")


async def via_gen(log):
    return await generator_based(log)


async def via_no_throw():
    return await no_throw()


async def swallows_exit(log):
    try:
        await suspend()
    except GeneratorExit:
        log.append("exit seen")
        raise


def drive(coro, *sends):
    out = [coro.send(None)]
    for value in sends:
        try:
            out.append(coro.send(value))
        except StopIteration as stop:
            out.append(("returned", stop.value))
            break
    return out


log = []
print(drive(one(), "sent value"))
print(drive(one((1, 2)), None))
print(drive(one(ValueError("as value")), None))
print(drive(one(StopIteration("odd")), None))

coro = caught(log)
coro.send(None)
try:
    coro.throw(ValueError("thrown in"))
except StopIteration as stop:
    print("after throw:", stop.value, log)

coro = one()
coro.send(None)
try:
    coro.throw(KeyError("uncaught"))
except KeyError as e:
    print("propagated", repr(e))

coro = via_gen(log)
print(coro.send(None))
try:
    coro.throw(KeyError("into generator"))
except StopIteration as stop:
    print("generator:", stop.value, log[-2:])

coro = via_gen(log)
coro.send(None)
coro.close()
print("closed generator:", log[-1])

coro = swallows_exit(log)
coro.send(None)
coro.close()
print("closed:", log[-1], coro.cr_frame)

coro = via_no_throw()
print(coro.send(None), coro.send(None))
try:
    coro.send(None)
except StopIteration as stop:
    print("no-throw returned", stop.value)
coro = via_no_throw()
coro.send(None)
try:
    coro.throw(RuntimeError("no throw method"))
except RuntimeError as e:
    print("thrown at the await:", e)
coro = via_no_throw()
coro.send(None)
coro.close()
print("no-close closed", coro.cr_frame)


loop = asyncio.new_event_loop()
try:
    fut = loop.create_future()

    async def waits_future():
        return await asyncio.wait_for(fut, 1)

    loop.call_soon(fut.set_result, ("tuple", "result"))
    print(loop.run_until_complete(waits_future()))
finally:
    loop.close()
