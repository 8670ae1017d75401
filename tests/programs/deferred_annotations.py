# requires: 3.14
"""PEP 649/749 deferred annotations: an annotation's calls run only when __annotate__ is
asked (by __annotations__ or annotationlib), once per read, in every scope, in every format."""
import annotationlib
import sys

order = []


def t(label, value=int):
    order.append(label)
    return value


def func(a: t("ann a") = t("default a", 1), *args: t("ann args"), **kw: t("ann kw")) -> t("ret"):
    local: t("local, never evaluated") = a
    return local


print("after def", order)
order.clear()
print(func.__annotations__)
print("after read", order)
order.clear()
print(func.__annotations__ is func.__annotations__, order)
print(annotationlib.get_annotations(func, format=annotationlib.Format.STRING))
print("string format", order)
order.clear()


class C:
    x: t("class ann x") = t("class value x", 5)
    y: t("class ann y")
    z = t("class value z", 6)

    def m(self, p: t("method ann") = 0) -> t("method ret"):
        return p


print("after class", order)
order.clear()
print(annotationlib.get_annotations(C), order)
order.clear()
print(annotationlib.get_annotations(C.m, format=annotationlib.Format.VALUE), order)
order.clear()
print(C.__annotate__(annotationlib.Format.VALUE), order)
order.clear()

mod_var: t("module ann") = t("module value", 3)
another: t("module ann only")
if len(sys.argv) < 100:
    conditional: t("conditional ann") = 1
print("module body", order)
order.clear()
print(annotationlib.get_annotations(sys.modules[__name__]), order)
order.clear()


def forward(x: Undefined, y: t("fwd y")) -> list[Undefined]:  # noqa: F821
    return x


refs = annotationlib.get_annotations(forward, format=annotationlib.Format.FORWARDREF)
# (No reprs: a ForwardRef's names its owner with its address.)
print({k: type(v).__name__ for k, v in refs.items()}, refs["x"].__forward_arg__, order)
print(refs["return"].__origin__, refs["return"].__args__[0].__forward_arg__)
order.clear()
print(annotationlib.get_annotations(forward, format=annotationlib.Format.STRING), order)
order.clear()
try:
    forward.__annotations__
except NameError as e:
    print("NameError:", e, order)
order.clear()


def boom():
    raise ValueError("raised while annotating")


def lazy_error(v: boom()):
    return v


print("defined lazy_error", lazy_error(4))
try:
    lazy_error.__annotations__
except ValueError as e:
    print("ValueError:", e)
annotate = func.__annotate__
print(annotate(annotationlib.Format.VALUE) == func.__annotations__, order)
try:
    annotate(annotationlib.Format.VALUE_WITH_FAKE_GLOBALS)
except NotImplementedError:
    print("NotImplementedError for fake globals")
print(annotationlib.call_annotate_function(annotate, annotationlib.Format.STRING))
