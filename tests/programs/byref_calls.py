"""recompyle.byref under instrumentation: every call site of this file goes through the
call-site selector (and the profiler's CallProxy on the run route), which must not change what byref
finds at the caller's position, nor the file:line:col its errors name."""
import functools
import sys

from recompyle import byref
from recompyle.byref import ByRefError


@byref("x")
def add(x, y):
    x += y
    return x


@byref("a", "b")
def swap(a, b):
    a, b = b, a


class Box:
    def __init__(self):
        self.value = 1
        self.items = [1, {"k": 2}]

    @byref("x")
    def scale(self, x, factor):
        x *= factor


counter = 0


def main():
    global counter
    a, b = 1, 2
    add(a, 10)
    swap(a, b)
    print("locals", a, b)
    box = Box()
    box.scale(box.value, 7)
    box.scale(box.items[1]["k"], 3)
    add(
        box.items[0],
        5,
    )
    print("box", box.value, box.items)
    add(counter, 3)
    print("global", counter)
    total = 0
    for i in range(5):
        add(total, i)
    print("loop", total)

    def inner():
        nonlocal total
        add(total, 100)

    inner()
    print("nonlocal", total)
    try:
        add(a + 1, 2)
    except ByRefError as e:
        print("refused:", e)
    try:
        functools.partial(add, a)(2)
    except ByRefError as e:
        print("refused:", e)
    print("a still", a)


class Scope:
    size = 2
    add(size, 40)
    print("class body", size)


main()
print("done", file=sys.stderr)
