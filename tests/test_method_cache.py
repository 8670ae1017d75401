"""A reported method call finds the method the interpreter would find, after anything changed.

A listened-to method call site remembers the method it found on the object's type (3.11:
``selector.rs``'s ``MethodCache``, guarded by the type's version tag and by the instance's
shared keys, ``cpython.rs``'s ``no_shadow``), so a loop's repeated lookup is one compare.
These tests warm a site up, then change what ``obj.m`` means in each way Python allows, and
check that the next call at the same site calls what plain Python would call. They run under
the profiler and under a handler (both go through the call-site proxy's lookup), and also on
versions that remember nothing, where they must pass all the same.
"""

from __future__ import annotations

import pytest

import recompyle

SOURCE = """
class C:
    def m(self, x):
        return ("C.m", x)

class D:
    def m(self, x):
        return ("D.m", x)

class Base:
    def m(self, x):
        return ("Base.m", x)

class Sub(Base):
    pass

class Slotted:
    __slots__ = ("a",)
    def m(self, x):
        return ("Slotted.m", x)

def call_m(o, x):
    return o.m(x)

def warm(o, n=50):
    for i in range(n):
        call_m(o, i)
"""


class Listening:
    """Runs its block with the call-site proxies in use: a profiler or a handler."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.calls = 0

    def __enter__(self) -> Listening:
        if self.how == "profiler":
            self.profiler = recompyle.Profiler().start()
        else:

            def before(event):
                self.calls += 1

            self.handle = recompyle.add_handler(before=before)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.how == "profiler":
            self.profiler.stop()
        else:
            recompyle.remove_handler(self.handle)


@pytest.fixture(params=["profiler", "handler"])
def listening(request):
    with Listening(request.param) as listening:
        yield listening


@pytest.fixture
def mod(instrumented):
    return instrumented(SOURCE, "method_cache_prog")


def test_method_replaced_on_the_class_after_warm_up(mod, listening):
    o = mod.C()
    mod.warm(o)
    mod.C.m = lambda self, x: ("new C.m", x)
    assert mod.call_m(o, 1) == ("new C.m", 1)
    del mod.C.m
    with pytest.raises(AttributeError):
        mod.call_m(o, 2)


def test_method_replaced_on_a_base_after_warm_up(mod, listening):
    o = mod.Sub()
    mod.warm(o)
    mod.Base.m = lambda self, x: ("new Base.m", x)
    assert mod.call_m(o, 1) == ("new Base.m", 1)
    mod.Sub.m = lambda self, x: ("Sub.m", x)
    assert mod.call_m(o, 2) == ("Sub.m", 2)


def test_instance_attribute_shadows_after_warm_up(mod, listening):
    o, other = mod.C(), mod.C()
    mod.warm(o)
    o.m = lambda x: ("instance m", x)
    assert mod.call_m(o, 1) == ("instance m", 1)
    assert mod.call_m(other, 2) == ("C.m", 2), "another instance still finds the class's"
    mod.warm(other)
    assert mod.call_m(o, 3) == ("instance m", 3)
    del o.m
    assert mod.call_m(o, 4) == ("C.m", 4)


def test_instance_with_its_own_dict_shadows(mod, listening):
    """Many attributes (the shared keys full) or vars() give the instance a real dict."""
    o = mod.C()
    mod.warm(o)
    fat = mod.C()
    for i in range(100):
        setattr(fat, f"a{i}", i)
    vars(fat)["m"] = lambda x: ("dict m", x)
    assert mod.call_m(fat, 1) == ("dict m", 1)
    assert mod.call_m(o, 2) == ("C.m", 2)


def test_instance_shadowing_before_warm_up(mod, listening):
    shadowed = mod.C()
    shadowed.m = lambda x: ("instance m", x)
    plain = mod.C()
    mod.warm(plain)
    assert mod.call_m(shadowed, 1) == ("instance m", 1)
    mod.warm(shadowed)
    assert mod.call_m(plain, 2) == ("C.m", 2)


def test_class_assignment_after_warm_up(mod, listening):
    o = mod.C()
    mod.warm(o)
    o.__class__ = mod.D
    assert mod.call_m(o, 1) == ("D.m", 1)
    mod.warm(o)
    o.__class__ = mod.C
    assert mod.call_m(o, 2) == ("C.m", 2)


def test_slots_class_and_c_type(mod, listening):
    s = mod.Slotted()
    mod.warm(s)
    mod.Slotted.m = lambda self, x: ("new Slotted.m", x)
    assert mod.call_m(s, 1) == ("new Slotted.m", 1)
    seen: list[int] = []

    class L(list):
        pass

    mod.warm(mod.C())
    for i in range(3):
        assert mod.call_m(type("A", (), {"m": seen.append})(), i) is None
    assert seen == [0, 1, 2], "a builtin stored on a class is not bound"
    lst = L()
    for i in range(3):
        lst.m = lst.append
        mod.call_m(lst, i)
    assert lst == [0, 1, 2]


def test_many_types_at_one_site(mod, listening):
    """Objects of different types alternate at one site: each call finds its own method."""
    objs = [mod.C(), mod.D(), mod.Sub(), mod.Slotted()]
    for i in range(40):
        o = objs[i % 4]
        assert mod.call_m(o, i)[0] == f"{type(o).__name__ if type(o) is not mod.Sub else 'Base'}.m"


def test_profiler_counts_every_cached_call(mod):
    o = mod.C()
    with recompyle.Profiler() as p:
        mod.warm(o, 30)
        mod.C.m = lambda self, x: ("new C.m", x)
        mod.warm(o, 20)
    rows = [r for r in p.stats() if r.callee == "o.m"]
    assert [r.calls for r in rows] == [50]


def test_instance_dict_replaced_after_warm_up(mod, listening):
    o = mod.C()
    mod.warm(o)
    o.__dict__ = {"m": lambda x: ("new dict m", x)}
    assert mod.call_m(o, 1) == ("new dict m", 1)
    o.__dict__ = {}
    assert mod.call_m(o, 2) == ("C.m", 2)


KINDS = """
class Kinds:
    @classmethod
    def cm(cls, x):
        return ("classmethod", cls.__name__, x)

    @staticmethod
    def sm(x):
        return ("staticmethod", x)

    @property
    def prop(self):
        return lambda x: ("property", x)

    def __getattr__(self, name):
        return lambda x: ("__getattr__", name, x)

class Meta(type):
    def m(cls, x):
        return ("metaclass", cls.__name__, x)

class WithMeta(metaclass=Meta):
    pass

class Child(Kinds):
    def cm(self, x):
        return ("super", super().cm(x))

def each(o, x):
    return [o.cm(x), o.sm(x), o.prop(x), o.missing(x)]

def meta(c, x):
    return c.m(x)

def child(o, x):
    return o.cm(x)
"""


def test_descriptors_getattr_metaclass_and_super_at_warm_sites(instrumented, listening):
    kinds = instrumented(KINDS, "method_cache_kinds")
    o = kinds.Kinds()
    expected = [
        ("classmethod", "Kinds", 1),
        ("staticmethod", 1),
        ("property", 1),
        ("__getattr__", "missing", 1),
    ]
    for _ in range(30):
        assert kinds.each(o, 1) == expected
        assert kinds.meta(kinds.WithMeta, 2) == ("metaclass", "WithMeta", 2)
        assert kinds.child(kinds.Child(), 3) == ("super", ("classmethod", "Child", 3))
    kinds.Kinds.sm = staticmethod(lambda x: ("new staticmethod", x))
    assert kinds.each(o, 4)[1] == ("new staticmethod", 4)
    kinds.Meta.m = lambda cls, x: ("new metaclass", x)
    assert kinds.meta(kinds.WithMeta, 5) == ("new metaclass", 5)
