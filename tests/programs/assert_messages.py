# exit: 1
"""assert with messages that call functions; ends with an uncaught AssertionError."""
calls = []


def message(text):
    calls.append(text)
    return f"message: {text}"


def check(x):
    return x > 0


assert check(1), message("never evaluated")
print("calls after passing assert", calls)
try:
    assert check(-1), message("evaluated once")
except AssertionError as e:
    print("AssertionError:", e, calls)
try:
    assert len([]) == 1
except AssertionError as e:
    print("no message:", repr(e))
try:
    assert check(0), (message("tuple"), 2)
except AssertionError as e:
    print("tuple message:", e.args)


def validate(items):
    for i, item in enumerate(items):
        assert isinstance(item, int), f"item {i} is {type(item).__name__}: {item!r}"
    return sum(items)


print(validate([1, 2, 3]))
total = validate([1, 2]) + validate([3, "four", 5])
