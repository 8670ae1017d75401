"""Recursion under the default recursion limit: how deep a recursion gets before
RecursionError, and that a deep (but legal) recursion still succeeds."""
import sys

print("limit", sys.getrecursionlimit())
deepest = 0


def dive(n):
    global deepest
    deepest = n
    return dive(n + 1)


try:
    dive(1)
except RecursionError as e:
    print("RecursionError:", e)
print("deepest plain recursion", deepest)


class Walker:
    def step(self, n):
        global deepest
        deepest = n
        return self.step(n + 1)


try:
    Walker().step(1)
except RecursionError:
    print("deepest method recursion", deepest)


def mutual_a(n):
    global deepest
    deepest = n
    return mutual_b(n + 1)


def mutual_b(n):
    return mutual_a(n + 1)


try:
    mutual_a(0)
except RecursionError:
    print("deepest mutual recursion", deepest)


def count_down(n):
    return 0 if n == 0 else 1 + count_down(n - 1)


print("count_down(900)", count_down(900))


def through_builtin(n):
    global deepest
    deepest = n
    return sorted([n], key=lambda v: through_builtin(v + 1))


try:
    through_builtin(0)
except RecursionError:
    print("deepest recursion through sorted(key=...)", deepest)
sys.setrecursionlimit(200)
try:
    dive(1)
except RecursionError:
    print("deepest with limit 200", deepest)
