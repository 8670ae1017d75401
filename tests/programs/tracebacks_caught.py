"""Formatted tracebacks (with 3.11 caret lines and column positions) of caught exceptions
raised through many call shapes, printed to stdout."""
import sys
import traceback


def fail(*args, **kwargs):
    raise ValueError(f"fail{args}")


def ident(x):
    return x


class Obj:
    def __init__(self):
        self.attr = self
        self.items = {"k": fail}

    def meth(self, *a):
        return fail(*a)

    def __call__(self, *a):
        return fail("__call__")

    def __getitem__(self, key):
        return fail("getitem")

    @property
    def prop(self):
        return fail("property")


obj = Obj()


def show(title, thunk):
    print(f"--- {title}")
    try:
        thunk()
    except Exception:
        text = traceback.format_exc()
        print(text.replace(__file__, "HERE"), end="")
        tb = sys.exc_info()[2]
        summary = traceback.extract_tb(tb)
        cols = [(fs.name, fs.lineno, getattr(fs, "colno", None), getattr(fs, "end_colno", None)) for fs in summary]
        print("positions", cols[1:])


show("simple", lambda: fail(1))
show("method", lambda: obj.meth(1, 2))
show("attribute chain", lambda: obj.attr.attr.meth(3))
show("subscript callee", lambda: obj.items["k"](4))
show("call result called", lambda: ident(fail)(5))
show("nested in args", lambda: ident(ident(fail(6))))
show("in binary op", lambda: 1 + ident(2) * fail(7))
show("callable object", lambda: obj(8))
show("getitem", lambda: obj[9])
show("property", lambda: obj.prop)
show("starred", lambda: fail(*[1, 2], **{"k": 3}))
show("method on literal", lambda: "{0}{1}".format(ident("x")))
show("builtin raising", lambda: int(ident("nope")))
show("in comprehension", lambda: [fail(i) for i in range(2)])
show("in generator", lambda: list(ident(fail(i) for i in range(2))))
show("multi-line call", lambda: ident(
    fail(
        10,
        11,
    )
))
show("long line", lambda: ident(1) + ident(2) + ident(3) + ident(4) + ident(5) + ident(6) + fail(7) + ident(8))


def multi_line_statement():
    value = (ident(1)
             + ident(2)
             + fail(3))
    return value


show("multi-line statement", multi_line_statement)


def with_unicode():
    naïve = "déjà vu"
    return ident(naïve) + fail("ünïcödé")


show("unicode before the call", with_unicode)
show("lambda in lambda", lambda: (lambda: fail("inner lambda"))())


def raise_in_finally():
    try:
        fail("try")
    finally:
        ident(None).missing()


show("exception during finally", raise_in_finally)
show("KeyError", lambda: {}[ident("k")])
show("zero division inside call", lambda: ident(1 / 0))
show("wrong arity", lambda: ident(1, 2))
show("not callable", lambda: ident(None)())
show("await-free coroutine call", lambda: ident(obj.attr).meth(*ident([12])))

