"""Comprehensions at module, class and function level, nested, with calls everywhere."""


def sq(x):
    return x * x


def keep(x):
    return x % 2 == 0


data = list(range(8))
print([sq(x) for x in data if keep(x)])
print({x: sq(x) for x in data if not keep(x)})
print(sorted({sq(x) % 5 for x in data}))
print(list(sq(x) for x in data))
print(sum(sq(x) for x in data if keep(x)))
print([[sq(i * j) for j in range(3)] for i in range(3)])
print([(i, j) for i in range(3) for j in range(i) if keep(i + j)])
print([y for x in data if (y := sq(x)) > 10])
print(dict(zip(map(str, data[:3]), map(sq, data[:3]))))


class AtClassLevel:
    base = [1, 2, 3]
    doubled = [sq(x) for x in base]
    pairs = {x: str(x) for x in base}
    try:
        uses_class_name = [base for _ in range(1)]
    except NameError as e:
        error = str(e)


print(AtClassLevel.doubled, AtClassLevel.pairs, AtClassLevel.error)


def in_function(n):
    scale = 3
    result = [sq(x) * scale for x in range(n)]
    gen = (x + scale for x in range(n))
    nested = [[scale * sq(y) for y in range(x)] for x in range(n)]
    return result, list(gen), nested, {k: v for k, v in enumerate(result) if keep(k)}


print(in_function(4))
matrix = [[1, 2, 3], [4, 5, 6]]
print([list(row) for row in zip(*matrix)])
print([f(1) for f in (lambda x: x + 1, sq, str)])
print([sq(x) for x in (sq(y) for y in range(3))])


async def agen():
    for i in range(3):
        yield i


async def acomp():
    return [sq(x) async for x in agen() if keep(x)]


import asyncio  # noqa: E402

print(asyncio.run(acomp()))
try:
    [1 / x for x in [1, 0]]
except ZeroDivisionError as e:
    print("ZeroDivisionError:", e)
