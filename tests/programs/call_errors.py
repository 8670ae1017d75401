"""TypeError messages from bad calls: arity, keywords, duplicates, non-callables, bad * and **."""
import functools


def f(a, b, c=3):
    return a + b + c


def posonly(a, b, /, c):
    return a, b, c


def kwonly(a, *, key):
    return a, key


def ident(x):
    return x


class K:
    def m(self, x):
        return x

    @classmethod
    def cm(cls, x):
        return x

    @staticmethod
    def sm(x):
        return x


def attempt(label, thunk):
    try:
        result = thunk()
    except TypeError as e:
        print(f"{label}: TypeError: {e}")
    else:
        print(f"{label}: ok {result!r}")


attempt("too few", lambda: f(1))
attempt("too many", lambda: f(1, 2, 3, 4))
attempt("unexpected kw", lambda: f(1, 2, d=4))
attempt("multiple values", lambda: f(1, 2, a=5))
attempt("posonly as kw", lambda: posonly(1, b=2, c=3))
attempt("kwonly positional", lambda: kwonly(1, 2))
attempt("kwonly missing", lambda: kwonly(1))
attempt("method too many", lambda: K().m(1, 2))
attempt("method too few", lambda: K().m())
attempt("classmethod", lambda: K.cm())
attempt("staticmethod", lambda: K.sm(1, 2))
attempt("unbound method", lambda: K.m(1))
one = 1
attempt("int not callable", lambda: one())
attempt("None not callable", lambda: ident(None)())
attempt("module attr not callable", lambda: functools.WRAPPER_ASSIGNMENTS())
attempt("star non-iterable", lambda: f(*1))
attempt("star None", lambda: f(1, *None))
attempt("dstar non-mapping", lambda: f(**1))
attempt("dstar list", lambda: f(1, **[("b", 2)]))
attempt("dstar non-str key", lambda: f(1, **{2: 3}))
attempt("dstar duplicate", lambda: f(1, **{"b": 2}, **{"b": 3}))
attempt("kw then dstar duplicate", lambda: f(1, b=2, **{"b": 3}))
attempt("builtin arity", lambda: len(1, 2))
attempt("builtin kw", lambda: len(obj=1))
attempt("builtin type", lambda: len(5))
attempt("int() kw", lambda: int("1", bas=2))
attempt("type() args", lambda: type(1, 2))
attempt("object() args", lambda: object(1))
attempt("class init arity", lambda: K(1))
attempt("partial", lambda: functools.partial(f, 1, 2, 3)(4))
attempt("lambda arity", lambda: (lambda x: x)())
attempt("bound builtin", lambda: [].append())
attempt("dict method", lambda: {}.get())
attempt("star on dict display", lambda: f(*{"a": 1}))


class NoCall:
    pass


attempt("instance not callable", lambda: NoCall()())


class BadMapping:
    def keys(self):
        return ["a"]

    def __getitem__(self, key):
        raise TypeError(f"bad getitem {key}")


attempt("dstar getitem raises", lambda: f(1, 2, **BadMapping()))


class BadIter:
    def __iter__(self):
        raise TypeError("bad iter")


attempt("star iter raises", lambda: f(*BadIter()))
