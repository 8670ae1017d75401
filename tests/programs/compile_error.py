# exit: 1
# quiet: a file that does not compile prints nothing and makes no calls
"""Parses, but the compiler rejects it ('return' outside function): CPython's own error."""
print("never printed")


def f(*a):
    return a


for i in f(1, 2):
    print(f(i))
return f(3)
