"""sys._getframe: names, line numbers, locals and globals of callers."""
import sys

HERE = __file__


def describe(depth):
    frame = sys._getframe(depth + 1)
    return (frame.f_code.co_name, frame.f_lineno, frame.f_code.co_qualname if sys.version_info >= (3, 11) else "")


def chain():
    names = []
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == HERE:
        names.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return names


def caller_locals():
    return sorted(sys._getframe(1).f_locals.items())


def caller_globals_name():
    return sys._getframe(1).f_globals["__name__"]


def outer(a, b=2):
    c = a + b
    print("outer sees", describe(0))
    print("outer caller", describe(1))
    print("chain from outer", chain())
    print("caller_locals", caller_locals())
    print("caller_globals", caller_globals_name())
    return middle(c)


def middle(n):
    return inner(
        n,
        chain(),
    )


def inner(n, seen):
    print("chain seen while building args", seen)
    print("chain in inner", chain())
    print("f_back of inner is middle", sys._getframe().f_back.f_code.co_name)
    return n


class C:
    def method(self, x):
        return describe(0), describe(1)

    @property
    def prop(self):
        return chain()


print(outer(1))
print(C().method(1))
print(C().prop)
print((lambda: describe(0))())
print([describe(0)[0] for _ in range(1)])
print(list(chain() for _ in range(1)))


def gen():
    yield chain()
    yield describe(0)


print(list(gen()))
try:
    sys._getframe(10_000)
except ValueError as e:
    print("ValueError:", e)
print("module frame name", sys._getframe().f_code.co_name, sys._getframe().f_lineno)
