"""dataclasses, enum (class and functional API), NamedTuple and namedtuple (which look at the
caller's frame for __module__), with pickling of each."""
import collections
import dataclasses
import enum
import pickle
import typing
from dataclasses import dataclass, field


@dataclass(order=True)
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list, compare=False)

    def __post_init__(self):
        print("__post_init__", self.x, self.y)

    def norm1(self):
        return abs(self.x) + abs(self.y)


@dataclass(frozen=True)
class Frozen:
    name: str
    size: int = dataclasses.field(default=1)


p = Point(3, -4)
print(p, p.norm1(), Point(1) < Point(2), sorted([Point(2, 1), Point(1, 5)]))
print(dataclasses.asdict(p), dataclasses.astuple(Frozen("f")))
print(dataclasses.replace(p, y=10))
print([f.name for f in dataclasses.fields(Point)])
try:
    Frozen("a").name = "b"
except dataclasses.FrozenInstanceError as e:
    print("FrozenInstanceError:", e)
Made = dataclasses.make_dataclass("Made", [("a", int), ("b", str, dataclasses.field(default="z"))])
print(Made(1), Made.__module__)


class Color(enum.Enum):
    RED = 1
    GREEN = enum.auto()
    BLUE = enum.auto()

    def describe(self):
        return f"{self.name}={self.value}"


class Perm(enum.Flag):
    R = enum.auto()
    W = enum.auto()
    X = enum.auto()


Animal = enum.Enum("Animal", "CAT DOG")
Shape = enum.IntEnum("Shape", [("SQUARE", 4), ("TRIANGLE", 3)])
print(list(Color), Color(2), Color["BLUE"].describe())
print(Perm.R | Perm.W, (Perm.R | Perm.X).value, Perm.W in (Perm.R | Perm.W))
print(list(Animal), Animal.__module__, Shape.TRIANGLE + 1, Shape.__module__)
try:
    Color(7)
except ValueError as e:
    print("ValueError:", e)


class Employee(typing.NamedTuple):
    name: str
    id: int = 3

    def badge(self):
        return f"{self.name}#{self.id}"


Pair = collections.namedtuple("Pair", "left right")
Triple = collections.namedtuple("Triple", ["a", "b", "c"], defaults=[0])
TypedPair = typing.NamedTuple("TypedPair", [("k", str), ("v", int)])
e = Employee("ann")
print(e, e.badge(), e._replace(id=9), e._asdict())
print(Pair(1, 2), Pair._make([3, 4]), Triple(1, 2), Pair.__module__, Triple.__module__)
print(TypedPair("a", 1), TypedPair.__module__, Employee.__module__)
for obj in (p, Frozen("f", 2), Color.GREEN, Perm.R | Perm.W, Animal.DOG, e, Pair(5, 6), TypedPair("q", 2)):
    clone = pickle.loads(pickle.dumps(obj))
    print("pickle", type(obj).__name__, clone == obj, clone)
