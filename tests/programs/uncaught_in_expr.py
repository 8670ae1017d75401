# exit: 1
"""Dies in a call inside a larger expression so the caret lines matter."""


def f(x):
    return 10 // x


def g(values):
    return [f(v) for v in values]


x = 1 + f(2)
print(x)
y = g([1, 2]) + [f(5) * 2]
print(y)
total = x * 3 + sum(g([3, 0, 4])) - 1
print("not reached", total)
