# requires: 3.14
"""3.14 syntax: template strings (PEP 750) with calls in their interpolations, except
clauses without parentheses (PEP 758), and control flow leaving finally (PEP 765 warns at
compile time, here through compile() of a string and at the module's own compile)."""
import string.templatelib
import warnings


def up(s):
    return s.upper()


name = "world"
tmpl = t"hello {up(name)!r:>10} and {len(name) * 2} {name=}"
print(type(tmpl).__name__, tmpl.strings, [i.value for i in tmpl.interpolations])
print([(i.expression, i.conversion, i.format_spec) for i in tmpl.interpolations])
print(list(tmpl))
nested = t"outer {t'inner {up(name)}'.interpolations[0].value}"
print(nested.values)
print(isinstance(tmpl, string.templatelib.Template))
print(t"a" t"b {up('c')}".strings)


def classify(exc):
    try:
        raise exc
    except ValueError, TypeError:
        return "value or type"
    except (KeyError, IndexError) as e:
        return f"lookup {type(e).__name__}"


print(classify(ValueError()), classify(TypeError()))
print(classify(KeyError()), classify(IndexError()))


def only_groups(exc):
    matched = []
    try:
        raise ExceptionGroup("g", [exc])
    except* ValueError, TypeError:
        matched.append(up("group matched"))
    return matched


print(only_groups(TypeError("x")))

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    code = compile(
        "def f():\n    try:\n        pass\n    finally:\n        return len('ab')\n",
        "<pep765>",
        "exec",
    )
    ns = {}
    exec(code, ns)
    print(ns["f"]())
print([(w.category.__name__, str(w.message), w.lineno) for w in caught])


def leaves():
    for i in range(3):
        try:
            return up("try")
        finally:
            continue  # noqa: B012
    return up("after loop")


print(leaves())
