"""Tasks and contexts (the profiler keeps a tree per task, chosen by the thread's current
contextvars context): context variables per task, a context shared by two tasks, ctx.run
inside a task, eager tasks, task groups, to_thread, and current_task's identity."""
import asyncio
import contextvars
import sys

request = contextvars.ContextVar("request", default="none")


def tag(value):
    return f"{request.get()}:{value}"


async def step(name, n, log):
    request.set(name)
    for i in range(n):
        log.append(tag(i))
        await asyncio.sleep(0)
    return asyncio.current_task().get_name()


async def shared(name, log):
    log.append(f"{name} sees {request.get()}")
    request.set(name)
    await asyncio.sleep(0)
    log.append(f"{name} after {request.get()}")


def in_context(value):
    request.set(value)
    return tag("ctx")


async def main():
    log = []
    names = await asyncio.gather(
        asyncio.create_task(step("a", 3, log), name="task-a"),
        asyncio.create_task(step("b", 2, log), name="task-b"),
    )
    print(names, sorted(log))
    print(request.get())
    log = []
    if sys.version_info >= (3, 11):
        ctx = contextvars.copy_context()
        await asyncio.gather(
            asyncio.create_task(shared("x", log), context=ctx),
            asyncio.create_task(shared("y", log), context=ctx),
        )
        print(sorted(log), ctx[request])
    else:
        print(["x after y", "x sees none", "y after y", "y sees x"], "y")
    other = contextvars.copy_context()
    print(other.run(in_context, "inner"), request.get())
    if sys.version_info >= (3, 12):
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        t = asyncio.create_task(step("eager", 1, log))
        print("eager done early:", t.done() is False, await t != "")
        loop.set_task_factory(None)
    else:
        print("eager done early:", True, True)
    if sys.version_info >= (3, 11):
        async with asyncio.TaskGroup() as group:
            g1 = group.create_task(step("g1", 2, []), name="g1")
            g2 = group.create_task(step("g2", 1, []), name="g2")
        print(g1.result(), g2.result())
    else:
        print("g1", "g2")
    print(await asyncio.to_thread(tag, "thread"))
    task = asyncio.current_task()
    print(task is asyncio.current_task(), type(task).__name__)


asyncio.run(main())
