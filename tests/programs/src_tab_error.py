# exit: 1
# quiet: a file that does not compile prints nothing and makes no calls
"""Mixes tabs and spaces inconsistently: TabError."""
print('never printed')


def f(x):
        if x:
	    return f(x - 1)
        return 0
