"""from __future__ import annotations: annotations stay strings; typing.get_type_hints
evaluates them in the module's namespace."""
from __future__ import annotations

import dataclasses
import inspect
import typing


def make_type(name):
    print("make_type called", name)
    return int


class Node:
    value: int
    children: list[Node]
    parent: typing.Optional[Node] = None
    weird: make_type("never called") = 0

    def add(self, child: Node, *, where: typing.Optional[dict[str, int]] = None) -> list[Node]:
        return [child]


def func(a: int, b: "str" = "x", *args: make_type("args"), **kw: float) -> typing.Tuple[int, ...]:
    return (a,)


x: list[int] = [1]
y: make_type("module level") = 2
print(__annotations__)
print(Node.__annotations__)
print(func.__annotations__)
print(Node.add.__annotations__)
print(typing.get_type_hints(Node.add))
print(typing.get_type_hints(func, localns={"make_type": lambda n: bytes}))
print(inspect.signature(func))
print(Node.__dict__["__annotations__"])


@dataclasses.dataclass
class DC:
    a: int
    b: list[DC] = dataclasses.field(default_factory=list)
    c: typing.ClassVar[int] = 3


print([(f.name, f.type) for f in dataclasses.fields(DC)])
print(typing.get_type_hints(DC))


def local_annotations():
    z: make_type("local") = 1
    return z


print(local_annotations())
