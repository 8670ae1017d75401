# exit: 1
"""No newline at the end, and the last line raises."""


def last(x):
    return x + 1


print(last(1))
print(last(None))