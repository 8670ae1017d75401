"""Generators: send, throw, close, yield from, return values, yield inside call arguments."""


def echo():
    received = []
    try:
        while True:
            value = yield len(received)
            received.append(value)
    except GeneratorExit:
        print("echo closing with", received)
        raise
    finally:
        print("echo finally")


g = echo()
print(next(g))
print(g.send("a"))
print(g.send(str(42)))
g.close()


def thrower():
    while True:
        try:
            yield "ready"
        except KeyError as e:
            print("caught", repr(e))
            yield "recovered"


t = thrower()
print(next(t))
print(t.throw(KeyError("k")))
print(next(t))
try:
    t.throw(ValueError, ValueError("boom"))
except ValueError as e:
    print("propagated", repr(e))


def inner():
    x = yield "inner-1"
    print("inner got", x)
    y = yield "inner-2"
    print("inner got", y)
    return x + y


def outer():
    result = yield from inner()
    print("outer result", result)
    yield from range(2)
    return "outer-done"


o = outer()
print(next(o))
print(o.send(10))
print(o.send(20))
print(next(o))
try:
    next(o)
except StopIteration as e:
    print("StopIteration value", e.value)


def args_with_yield():
    result = print("printing", (yield "first"), (yield "second"), sep="|")
    yield max((yield "third"), (yield "fourth"))
    return result


a = args_with_yield()
print(next(a), "suspended at line", a.gi_frame.f_lineno)
print(a.send("A"), "suspended at line", a.gi_frame.f_lineno)
print(a.send("B"))
print(a.send(3))
print(a.send(7))


def delegating_throw():
    try:
        yield from inner()
    except RuntimeError as e:
        yield f"delegated {e}"


d = delegating_throw()
next(d)
print(d.throw(RuntimeError("into inner")))


def fib():
    a, b = 0, 1
    while True:
        yield a
        a, b = b, a + b


import itertools  # noqa: E402

print(list(itertools.islice(fib(), 10)))
print(sum(x * x for x in range(10) if x % 2))
gen = (str(x) for x in range(3))
print("-".join(gen), list(gen))
print(list(zip(*(iter([i, i + 1]) for i in range(3)))))


def gen_raises():
    yield 1
    raise LookupError("from generator")


try:
    list(gen_raises())
except LookupError as e:
    print("LookupError", e)


def stop_inside():
    yield next(iter([]))


try:
    list(stop_inside())
except RuntimeError as e:
    print("RuntimeError", e, "cause", type(e.__cause__).__name__)
print(g.gi_frame, o.gi_running, type(o).__name__)
