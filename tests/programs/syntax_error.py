# exit: 1
# quiet: a file that does not compile prints nothing and makes no calls
"""Does not parse: CPython's own SyntaxError, with its caret range, must be what is shown."""
print("never printed")


def f(*a):
    return a


value = f(1, 2) f(3)
