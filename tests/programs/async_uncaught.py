# exit: 1
"""Dies with an exception escaping asyncio.run through awaits and a task."""
import asyncio


async def leaf(n):
    await asyncio.sleep(0)
    return {"a": 1}[n]


async def branch(n):
    return await leaf(n) + 1


async def main():
    print(await branch("a"))
    task = asyncio.create_task(branch("zz"))
    return await task


asyncio.run(main())
