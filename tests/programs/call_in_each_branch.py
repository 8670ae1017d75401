# exit: 1
"""Calls that make their own call in each branch of the listening flag (one line, callee or
object and arguments cheap to write twice, in code that runs many times): a function call
made by ``__recompyle_c__`` while the profiler alone listens, a method looked up by
``__recompyle_ml__``. Their results,
errors and tracebacks (carets included), the order their parts are evaluated in, name
mangling, lookups that run Python code, and the frame the callee sees."""
import sys
import traceback

LOG = []


def note(what, value=None):
    LOG.append(what)
    return value


class Meta(type):
    def __getattr__(cls, name):
        note(f"Meta.__getattr__({name})")
        return lambda *a: (name, a)


class Thing(metaclass=Meta):
    scale = 3

    def __init__(self, tag):
        self.tag = tag
        self.__hidden = 7
        self.plain_attr = len

    def m(self, x=0, *rest, k=None):
        return (self.tag, x, rest, k)

    def __private(self, x):
        return ("private", x)

    def call_private(self, x):
        for _ in range(2):
            r = self.__private(x)
        return r, self.__hidden

    def __getattr__(self, name):
        note(f"__getattr__({name})")
        if name.startswith("dyn"):
            return lambda *a, **k: (name, a, sorted(k.items()))
        raise AttributeError(f"{type(self).__name__!r} has no {name!r} here")

    @property
    def prop(self):
        note("prop")
        return lambda y: ("prop", y)

    @staticmethod
    def st(x):
        return ("static", x)

    @classmethod
    def cm(cls, x):
        return ("class", cls.__name__, x)

    def caller_frame(self):
        return sys._getframe(1).f_code.co_name

    def __call__(self, *a):
        return ("called", a)

    def ＵＮＩ(self):
        return "normalised name"


class Child(Thing):
    def m(self, x=0, *rest, k=None):
        for _ in range(2):
            base = super().m(x, *rest, k=k)
        return ("child",) + base


def f(a=1, b=2, *, c=3):
    return (a, b, c)


def where():
    return sys._getframe(1).f_code.co_name, sorted(sys._getframe(1).f_locals)


def run(t, xs, d):
    out = []
    for i in range(3):
        out.append(f())
        out.append(f(i))
        out.append(f(i, b=d["k"], c=xs[0]))
        out.append(f(*xs))
        out.append(f(**{"c": d["k"]}))
        out.append(t.m())
        out.append(t.m(i, k=i))
        out.append(t.m(i, *xs))
        out.append(t.st(i))
        out.append(t.cm(i))
        out.append(t.prop(i))
        out.append(t.dyn_x(i, z=1))
        out.append(t.plain_attr(xs))
        out.append(t.call_private(i))
        out.append(t.caller_frame())
        out.append(t.ＵＮＩ())
        out.append(Thing.from_meta(i))
        out.append(t(i))
        out.append(where())
        out.append(len(xs))
        out.append(xs.index(xs[0]))
        out.append(d.get("k", None))
        out.append("-".join(xs))
        out.append(type(t).__name__.upper())
        out.append(f'{t.m(i)}|{xs.index(xs[0])!r:>{len(xs)}}|{f"{t.st(i)}"}|{f(i)}')
    return out


def order(t):
    # The object, the lookup (a property here), the arguments, the call.
    class Loud:
        def __init__(self, name):
            self.name = name

        def __getattr__(self, attr):
            note(f"lookup {self.name}.{attr}")
            return lambda *a: note(f"call {self.name}.{attr}{a}")

    for n in range(1):
        a = Loud("a")
        a.first(n)
        a.second(n, n)
    return LOG[-4:]


def failing(t, n):
    for _ in range(n):
        total = 1 + t.missing(n) * 2
    return total


def failing_call(n):
    for _ in range(n):
        r = 3 * f(n, c=n, d=n) + 1
    return r


print(run(Thing("t"), ["x", "y"], {"k": 5}))
print(run(Child("c"), ["p", "q"], {"k": 6}))
print(order(Thing("o")))
print(LOG.count("prop"), len(LOG))
try:
    failing_call(2)
except TypeError:
    traceback.print_exc(file=sys.stdout)
try:
    failing(Thing("f"), 2)
except AttributeError as e:
    print("caught", e)
failing(Thing("g"), 1)
