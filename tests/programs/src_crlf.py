# exit: 1
"""CRLF line endings."""


def join(*parts, sep=" "):
    return sep.join(parts)


def fail(x):
    raise ValueError(f"bad {x!r}")


text = """line one
line two"""
print(repr(text))
print(join("a",
           "b",
           sep="-"))
value = 1 + \
    len(join("c", "d"))
print(value)
result = join(
    "x",
    fail(
        "crlf"
    ),
)
