# requires: 3.10
"""match statements with guards that call functions, class patterns, mappings, sequences."""
from dataclasses import dataclass

calls = []


def is_big(n):
    calls.append(n)
    return n > 100


@dataclass
class Point:
    x: int
    y: int


class Custom:
    __match_args__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __repr__(self):
        return f"Custom({self.a!r}, {self.b!r})"


def classify(value):
    match value:
        case 0:
            return "zero"
        case int(n) if is_big(n):
            return f"big int {n}"
        case int(n) | float(n) if n < 0:
            return f"negative {n}"
        case int() | float():
            return "number"
        case str() as s if s.startswith(str("x")):
            return "x-string"
        case [first, *rest] if len(rest) == sum(map(bool, rest)):
            return f"seq first={first} rest={rest}"
        case [_, _]:
            return "pair"
        case {"kind": "circle", "r": r, **others} if others:
            return f"circle {r} with {sorted(others)}"
        case {"kind": kind}:
            return f"mapping kind={kind}"
        case Point(x=0, y=y):
            return f"on y axis at {y}"
        case Point(x, y) if is_big(x + y):
            return "far point"
        case Custom(1, b):
            return f"custom b={b}"
        case Custom(a=a):
            return f"custom a={a}"
        case None:
            return "none"
        case _:
            return f"other {type(value).__name__}"


for v in [0, 7, 1000, -3, -2.5, 3.5, "xyz", "abc", [1, 2, 3], [1, 0], {"kind": "circle", "r": 2, "c": 1},
          {"kind": "square"}, Point(0, 5), Point(60, 70), Point(1, 1), Custom(1, 2), Custom(3, 4), None, b"b"]:
    print(repr(v), "->", classify(v))
print("guard calls", calls)


def command(text):
    match text.split():
        case ["go", direction] if direction in ("north", "south"):
            return f"going {direction}"
        case ["drop", *objects]:
            return f"dropping {len(objects)}"
        case [("quit" | "exit")]:
            return "bye"
        case _:
            return "unknown"


print([command(c) for c in ["go north", "go up", "drop a b c", "quit", "exit", ""]])
match Point(len("ab"), len("abc")):
    case Point(x=2, y=yy):
        print("module-level match", yy)
