"""Decorators with arguments, functools.wraps, stacked decorators, decorator evaluation order,
class decorators, lru_cache, singledispatch, inspect.signature of wrapped functions."""
import functools
import inspect

order = []


def tag(label):
    order.append(f"tag({label}) evaluated")

    def decorator(func):
        order.append(f"tag({label}) applied to {func.__name__}")

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            order.append(f"enter {label}")
            try:
                return func(*args, **kwargs)
            finally:
                order.append(f"exit {label}")

        wrapper.label = label
        return wrapper

    return decorator


def plain(func):
    def wrapper(*a, **k):
        return ("plain", func(*a, **k))

    return wrapper


def repeat(times):
    def deco(func):
        @functools.wraps(func)
        def inner(*args):
            return [func(*args) for _ in range(times)]

        return inner

    return deco


@tag("outer")
@tag(str(1 + 1))
def add(a: int, b: int = 2) -> int:
    """Adds things."""
    return a + b


print(order)
order.clear()
print(add(1), order)
print(add.__name__, add.__doc__, add.__qualname__, add.__wrapped__.__name__, add.label)
print(inspect.signature(add), inspect.unwrap(add).__code__.co_firstlineno)


@plain
def bare(x):
    return x


print(bare(3), bare.__name__, bare.__qualname__)


@repeat(times=3)
def hello(name):
    return f"hi {name}"


print(hello("bob"))


@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


print(fib(30), fib.cache_info())


@functools.singledispatch
def describe(obj):
    return f"object {obj!r}"


@describe.register
def _(obj: int):
    return f"int {obj}"


@describe.register(list)
def _(obj):
    return f"list of {len(obj)}"


print(describe(1), describe([1, 2]), describe("s"))


class Cls:
    @tag("method")
    def method(self, x):
        return x * 2

    @staticmethod
    @tag("static")
    def static(x):
        return -x

    @functools.cached_property
    def cached(self):
        print("computing cached")
        return 42

    @property
    @tag("prop")
    def prop(self):
        return "p"


order.clear()
c = Cls()
print(c.method(2), Cls.static(3), c.cached, c.cached, c.prop, order)
decorators_list = [plain, tag("listed")]


@decorators_list[1]
def indexed():
    return "indexed"


print(indexed())


@(lambda f: lambda: f() + "!")
def exclaim():
    return "hey"


print(exclaim())
partial_add = functools.partial(add, b=40)
print(partial_add(2), functools.reduce(lambda a, b: a * b, range(1, 6)))


def dec_raises(func):
    raise RuntimeError(f"cannot decorate {func.__name__}")


try:
    @dec_raises
    def victim():
        pass
except RuntimeError as e:
    print("RuntimeError:", e)
