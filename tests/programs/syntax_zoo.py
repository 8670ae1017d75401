"""Less common syntax around calls, to catch a parser or rewriter that disagrees with CPython:
soft keywords as names, literals, operators, star expressions, f-string corners, one-liners."""
import math


def f(*args, **kwargs):
    return args[0] if len(args) == 1 and not kwargs else (args, kwargs)


match = f(1)  # soft keywords are ordinary names
case = f(2)
_ = f(3)
type = f  # noqa: A001
print(match, case, _, type(4), match.real, f(match))
del type
print(f(1_000_000), f(0x_FF), f(0o17), f(0b1010), f(1e-3), f(1_0j), f(.5), f(5.), f(0_0))
print(f(Rb"\x00", BR"raw", rB"\n", u"unicode", b"\x41\x42"))
print(f("\N{LATIN SMALL LETTER E WITH ACUTE}"), f("\u00e9\U0001F40D\x41\101"))
print(f(f"\N{BULLET} {f('x')} \N{EN DASH}"))
x = 7
print(f(f"{x:=10}"), f(f"{(x := 8)}"), x)  # format spec "=10" versus a walrus
print(f(f"{x!r:>{f(5)}}|{x:{'<'}{f(4)}}|{'a:b'}|{f('c:d')}|{ {'k': 1}['k'] }"))
print(f(f"{'{'}{f('}')}{{}}"))
print(f(f'{"nested"}' f"{'quotes'}" "plain" r'\raw'))
print(f(*[1, 2], *(3,)), f(*"ab"), f(**{}), f(*(), **{"k": f(1)}))
print(f([*range(3), *f("xy")], {*f("ab")} == {"a", "b"}, {**{"a": 1}, **f({"b": 2})}))
print(f(lambda: 1)(), f(lambda *a, k=f(2), **kw: (a, k, kw))(1, z=3))
print(f(lambda x, /, y, *, z: (x, y, z))(1, 2, z=3))
print(f(1) if f(0) else f(2), f(not f(0)), f(-f(1)), f(~f(1)), f(+f(1)))
print(f(2) ** f(3) ** f(2), f(7) // f(2), f(7) % f(4), f(2) << f(3), f(1) < f(2) == f(2) != f(3))
print(f(1) is not f(None), f(1) not in [f(2)], f(1) in (f(1),), f(0) or f(3), f(2) and f(0))
print(f([[1, 2], [3, 4]])[f(1)][f(0)], f("abcdef")[f(1):f(5):f(2)], f("abc")[::-1])
print(f(...), f(Ellipsis) is ..., f(None), f(True), f(NotImplemented))
if f(1): print(f("one-liner if"))
while f(0): pass
for i in f([1, 2]): print(f(i), end=f(" "))
print()
class OneLiner: value = f(10)
print(OneLiner.value); print(f("semicolons")); z = f(3)
def one_line_def(a=f(4)): return f(a)
print(one_line_def(), z)
a, *b = f([1, 2, 3])
[c, d] = f((4, 5))
(e) = f(6)
print(a, b, c, d, e)
print(f((yield_ := 1)), yield_)
def gen_with_star():
    yield f(1), *f([2, 3])
    return f(4)
print(list(gen_with_star()))
def star_return():
    return *f([1]), *f([2])
print(star_return())
print(f(*[i for i in range(2)]), f(*(i for i in range(2))))
arr = [[0] * 3 for _ in range(3)]
arr[f(1)][f(2)] = f(9)
print(arr)
print(f(math.pi).__round__(f(2)), f(3.7).__floor__(), (f(5)).bit_length())
print(f(x for x in f([1, 2])), sep=f("")) if False else print(sum(f(x) for x in f([1, 2])))
with (open(__file__, encoding="utf-8") as fh1,
      open(__file__, encoding="utf-8") as fh2):
    print(f(fh1.readline()) == f(fh2.readline()))
print(f(f(f(f(f(f(f(f(f(f(1)))))))))))
print(f(
    f(
        1
    )
    +
    f(2)
))
print(f.__call__(1), f.__call__.__call__(2), getattr(f, "__call__")(3))
print((f)(1), ((f))(2), (f)((3)), (((f)(4))))
print(f(*[1], **{}) if f(True) else None)
print(f('''triple
single''' + """triple
double"""))
print(f(global_var := "walrus at module level"), global_var)
print([f(j) for j in range(3) if (k := f(j)) >= 1], k)
try:
    f(1)(2)
except TypeError as exc:
    print("TypeError:", exc)
assert f(1), f("message")
print(f(1) @ 1 if False else "matmul parses")
