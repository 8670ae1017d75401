"""f-strings with nested calls, format specs, conversions and {expr=} self-documenting text."""
import datetime
import decimal


def f(x):
    return x * 2


def width():
    return 8


name = "world"
values = [3.14159, 2.71828]
print(f"hello {name.upper()} {len(name)}")
print(f"{f(21)} {f('ab')!r} {f(1.5):.3f}")
print(f"[{name:>{width()}}] [{name:^{width() + 2}}] [{f(7):0{width()}d}]")
print(f"{f(1)=}")
print(f"{ f ( 2 ) = }")
print(f"{f(3)=!s:>6}")
print(f"{name.title()=:*^15}")
print(f"{[f(v) for v in range(3)]=}")
print(f"{sorted(values, key=lambda v: -v)=}")
print(f"{'nested ' + f'{f(4)}'}")
print(f"{decimal.Decimal('1.10') * 3:.4f}")
print(f"{datetime.date(2020, 1, 2):%Y/%m/%d} {datetime.date(2020, 1, 2)!r}")
print(f"{max(values):{'.'}{len('abc')}f}")
print(f"{dict(a=1)['a']} {f'{f(0)}'!a}")
print(f"""multi
{f(
    10
)} line""")
print(f"{1:{f(2)}}|{'x':{'<'}{f(2)}}|")
print(f"{'%s' % f(3)} {'{}'.format(f(4))} {format(f(5), 'x')}")
print(f"{{literal}} {f(6)!r:>5} {{{f(7)}}}")
x = 10
print(f"{x=} {x = } {x=:#x} {x=!r}")
print(f"{(lambda y: y + 1)(1)=}")
print(f"{(yy := f(9))=} {yy}")
try:
    print(f"{f(None)}")
except TypeError as e:
    print("TypeError:", e)
try:
    print(f"{f(1):zz}")
except ValueError as e:
    print("ValueError:", e)
