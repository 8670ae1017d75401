"""with statements calling functions, __exit__ suppression, contextlib helpers, ExitStack."""
import contextlib
import io


class Managed:
    def __init__(self, name, suppress=False):
        self.name = name
        self.suppress = suppress

    def __enter__(self):
        print("enter", self.name)
        return self.name.upper()

    def __exit__(self, exc_type, exc, tb):
        print("exit", self.name, exc_type.__name__ if exc_type else None, exc)
        return self.suppress


def make(name, **kw):
    print("make", name)
    return Managed(name, **kw)


with make("a") as a, make("b") as b:
    print("body", a, b)
with make("s", suppress=True):
    raise ValueError("swallowed")
try:
    with make("outer"), make("inner"):
        int("x")
except ValueError as e:
    print("escaped:", e)


@contextlib.contextmanager
def tagged(tag):
    print(f"<{tag}>")
    try:
        yield tag * 2
    except KeyError as e:
        print("handled in generator", e)
    finally:
        print(f"</{tag}>")


with tagged("p") as t:
    print("inside", t)
with tagged("q"):
    raise KeyError("k")
with contextlib.suppress(ZeroDivisionError):
    print(1 / 0)
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    print("captured line")
print("captured:", repr(buf.getvalue()))
with contextlib.ExitStack() as stack:
    names = [stack.enter_context(make(n)) for n in "xyz"]
    stack.callback(print, "callback", len(names))
    print("stack body", names)
with contextlib.nullcontext(make("null")) as m:
    print(type(m).__name__)


class Closing:
    def close(self):
        print("closed")


with contextlib.closing(Closing()):
    print("using closing")


async def amain():
    @contextlib.asynccontextmanager
    async def actx(v):
        print("aenter", v)
        yield v + 1
        print("aexit", v)

    async with actx(1) as v:
        print("async body", v)


import asyncio  # noqa: E402

asyncio.run(amain())
