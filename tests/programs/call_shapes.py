"""Many syntactic shapes of calls: literals, lambdas, trailing commas, generator arguments,
parenthesised callees, keywords after **, calls in defaults, in slices, in conditions..."""
import functools
import operator


def show(*args, **kwargs):
    return f"args={args} kwargs={sorted(kwargs.items())}"


print(show())
print(show(1,))
print(show(1, 2, k=3,))
print(show(*[1], 2, *(3, 4), k=5, **{"a": 6}, z=7))
print(show(**{"b": 1}, **{"c": 2}))
print(list(x for x in range(3)))
print(show(list(x for x in range(3))), sorted(x for x in "cab"))
print(len(show((x for x in range(2)), 1)), sum(x for x in range(4) if x))
print((show)(1))
print((lambda *a: a)(1, 2))
print("{}-{}".format(1, 2), "abc".upper().lower().title())
print([1, 2, 3].index(2), {1: show}.get(1)(0), (show,)[0](9))
print(b"xy".hex(), 3.5.is_integer(), (1).bit_length(), 1j.conjugate())
print(show(*"ab", *b"c", **dict(d=1)))
print(show(show(show())))
print(show(k=show(k=show(k=1))))
print(show(
    1,
    *[
        2,
        3,
    ],
    k=(
        4
    ),
))
print(show
      (1))
print(show  (  1  ,  2  ))
print(show(\
1))
print(list(range(10))[slice(1, len("abcd"))])
print(list(map(operator.mul, [1, 2], [3, 4])), functools.reduce(operator.add, range(5)))
if show(1) and len(show()) > 3:
    print("condition with calls")
while not show():
    pass
print(show(1) if show() else show(2))
print(show(*(), **{}))
print(operator.methodcaller("split", "-")("a-b"), operator.attrgetter("real")(5))
print(type(1)("7"), type("T", (), {})().__class__.__name__)
print(getattr(str, "join")(",", ["a", "b"]), str.join(",", "cd"))
print(show(a:=1, b:=a + 1), a, b)
print(show("implicit" " concatenation" f" {len('x')}"))
print(show(r"\n raw", b"bytes", """triple
quoted""", '''single
triple'''))
print(show(**{"if": 1, "class": 2}))
print(show(lambda: 1).startswith("args=(<function"))
print(show(1 if True else 2, not False, -len("ab"), ~1))
print(show(*range(3), sep="-"))
print(*range(3), sep="-")
print(show([*range(2), *show()[:3]], {**{"a": 1}, "b": show(2)[:4]}))
print(iter(lambda it=iter([1, 2, 0]): next(it), 0).__next__())
print(sum([1, 2]) * max(3, 4) - min(5, 6) // abs(-7) ** pow(2, 1))
print(show(show)[:10])
print(show(...), show(None, True, NotImplemented))
cls = type("Callable", (), {"__call__": lambda self, *a: ("called", a)})
print(cls()(1)(2) if False else cls()(1))
print(show(*[show(i) for i in range(2)]))
fn = show
for fn in (show, repr):
    print(fn(1))
del fn
print(show(**{k: v for k, v in [("p", 1)]}))
