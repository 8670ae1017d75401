# exit: 1
"""Dies inside a call that spans several lines."""


def combine(first, second, *, sep):
    return sep.join([first, second])


def fail(x):
    return int(x)


print(combine("a", "b", sep="-"))
result = combine(
    "left",
    fail(
        "not a number"
    ),
    sep="+",
)
