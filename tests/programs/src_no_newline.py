"""No newline at the end of the file."""


def last(x):
    return x + 1


print(last(1))
print(last(last(2)))  # trailing comment without newline