"""Awaited calls under the profiler: cancellation, timeouts, errors and odd awaitables
behave as plain (the profiler times `await f(x)` through a native awaitable)."""
import asyncio
import sys
import traceback
import types


async def sleeper(delay, log, name):
    log.append(f"start {name}")
    try:
        await asyncio.sleep(delay)
    except asyncio.CancelledError:
        log.append(f"cancelled {name}")
        raise
    log.append(f"end {name}")
    return name


async def boom(msg):
    await asyncio.sleep(0)
    raise ValueError(msg)


class Box:
    def __init__(self, value):
        self.value = value

    async def get(self, extra=0):
        await asyncio.sleep(0)
        return self.value + extra

    def future(self):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(self.value * 2)
        return fut


class BadAwait:
    def __await__(self):
        return 42


class CoroAwait:
    def __await__(self):
        return boom("never").__await__() if False else iter([])


def plain_value():
    return 7


@types.coroutine
def old_style():
    yield
    return "old"


async def catcher(coro):
    try:
        return await coro
    except Exception as e:
        return f"{type(e).__name__}: {e}"


async def interleaved(i, log):
    total = 0
    for k in range(3):
        total += await Box(i).get(k)
        await asyncio.sleep(0)
    log.append(i)
    return total


async def main():
    log = []
    box = Box(5)
    print(await box.get(), await box.get(1) + 1, await box.future())
    print(await catcher(boom("direct")))
    try:
        await boom("traced")
    except ValueError:
        print("".join(traceback.format_exc().splitlines(True)[-2:]).strip())
    task = asyncio.create_task(sleeper(10, log, "t1"))
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("task cancelled", log)
    try:
        await asyncio.wait_for(sleeper(10, log, "t2"), timeout=0.01)
    except asyncio.TimeoutError:
        print("wait_for timed out", log)
    if sys.version_info >= (3, 11):
        try:
            async with asyncio.timeout(0.01):
                await sleeper(10, log, "t3")
        except TimeoutError:
            print("timeout context", log[-2:])
    else:
        print("timeout context", ["start t3", "cancelled t3"])
    shielded = await asyncio.shield(sleeper(0, log, "s"))
    print("shielded", shielded)
    for bad in (plain_value, BadAwait, CoroAwait):
        try:
            print(await bad())
        except TypeError as e:
            print("TypeError:", e)
    print(await old_style())
    coro = box.get()
    first = asyncio.ensure_future(coro)
    await asyncio.sleep(0)
    try:
        await coro
    except RuntimeError as e:
        print("RuntimeError:", e)
    print(await first)
    order = []
    results = await asyncio.gather(*[interleaved(i, order) for i in range(100)])
    print(sum(results), order[:5], len(order))
    gen = (await box.get(i) for i in range(3))
    print([x async for x in gen])
    return "done"


print(asyncio.run(main()))
