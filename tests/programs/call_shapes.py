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


def kw_order(*args, **kwargs):
    return list(kwargs)


print(kw_order(b=1, a=2, c=3), kw_order(z=0, **{"y": 1, "x": 2}, w=3, **dict(v=4)))
print(show(callee=1, site_id=2, self=3, args=4, kwargs=5))
print(len(show(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299)[:-1].split(",")))
print(show(*range(1000))[-20:])
print(show(  # a comment inside the call
    1,  # another one
    # a line with only a comment
    2,
))
print([f for f in (show, repr)][0](1), {"k": [show]}["k"][0](2))
