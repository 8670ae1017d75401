"""Without the __future__ import, annotations containing calls are evaluated at definition
time, in a well-defined order relative to defaults and decorators."""
import sys
import typing

order = []


def t(label, value=int):
    order.append(label)
    return value


def deco(label):
    order.append(f"deco {label}")
    return lambda f: f


@deco("d1")
def func(a: t("ann a") = t("default a", 1), *args: t("ann args"), b: t("ann b") = t("default b", 2),
         **kw: t("ann kw")) -> t("ann return"):
    return a


print(order)
order.clear()
print(func.__annotations__)
print(func.__defaults__, func.__kwdefaults__)


class C:
    x: t("class ann x") = t("class value x", 5)
    y: t("class ann y")
    z = t("class value z", 6)

    def m(self, p: t("method ann") = t("method default", 0)) -> t("method ret"):
        local: t("local ann never evaluated") = 1
        return local


print(order)
order.clear()
print(C.__annotations__, C().m())
mod_var: t("module ann") = t("module value", 3)
another: t("module ann only")
print(order)
order.clear()
# The module's attribute, not the bare name: from 3.14 (PEP 649) module annotations are
# computed by __annotate__ when the attribute is first read, and the name is not a global.
print({k: v for k, v in sys.modules[__name__].__annotations__.items()})
print(order)
print(typing.get_type_hints(func))
lam = lambda q=t("lambda default", 9): q  # noqa: E731
print(lam(), order[-1])
try:
    def bad(x: undefined_annotation_name):  # noqa: F821
        pass
except NameError as e:
    print("NameError:", e)
