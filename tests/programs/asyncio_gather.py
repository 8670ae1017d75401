"""Coroutines, asyncio.gather, tasks, async generators, async with/for, await in arguments."""
import asyncio


async def work(name, delay_steps, log):
    for i in range(delay_steps):
        log.append(f"{name}{i}")
        await asyncio.sleep(0)
    return f"{name}-done"


async def fails(msg):
    await asyncio.sleep(0)
    raise ValueError(msg)


class Resource:
    def __init__(self, name):
        self.name = name

    async def __aenter__(self):
        print("enter", self.name)
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, exc_type, exc, tb):
        print("exit", self.name, exc_type.__name__ if exc_type else None)
        return exc_type is KeyError


class Ticker:
    def __init__(self, n):
        self.n = n

    def __aiter__(self):
        self.i = 0
        return self

    async def __anext__(self):
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        await asyncio.sleep(0)
        return self.i


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i * 10
    print("agen exhausted")


async def add(a, b):
    await asyncio.sleep(0)
    return a + b


async def main():
    log = []
    results = await asyncio.gather(work("a", 3, log), work("b", 2, log), work("c", 1, log))
    print(results)
    print(log)
    mixed = await asyncio.gather(work("x", 1, []), fails("bad"), return_exceptions=True)
    print([repr(r) for r in mixed])
    try:
        await asyncio.gather(fails("first"), work("y", 2, []))
    except ValueError as e:
        print("gather raised", e)
    async with Resource("r1") as r:
        print("inside", r.name)
    async with Resource("r2"):
        raise KeyError("suppressed")
    async for value in Ticker(3):
        print("tick", value)
    print([v async for v in agen(3)])
    print(await add(await add(1, 2), await add(3, 4)))
    print(max(await add(1, 1), await add(0, 5)))
    task = asyncio.create_task(work("t", 2, log), name="named-task")
    print(task.get_name(), await task)
    ag = agen(5)
    print(await ag.__anext__(), await ag.asend(None))
    await ag.aclose()
    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0)
    except asyncio.TimeoutError:
        print("timeout")
    return "main-done"


print(asyncio.run(main()))


async def coro_frame():
    import sys

    return sys._getframe().f_code.co_name, sys._getframe(1).f_code.co_name


print(asyncio.run(coro_frame())[0])
c = add(1, 2)
print(type(c).__name__, c.cr_code.co_name)
c.close()
