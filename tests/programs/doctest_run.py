"""doctest.testmod() on __main__: finds the examples through the functions' __module__ and
reports failures with line numbers taken from code objects and docstrings."""
import doctest


def add(a, b):
    """Add two numbers.

    >>> add(1, 2)
    3
    >>> add("a", "b")
    'ab'
    >>> add(1, 1)  # this one is wrong on purpose
    3
    """
    return a + b


class Stack:
    """A stack.

    >>> s = Stack()
    >>> s.push(1).push(2).items
    [1, 2]
    >>> s.pop()
    2
    >>> s.pop(); s.pop()
    Traceback (most recent call last):
        ...
    IndexError: pop from empty list
    >>> s.pop()
    1
    """

    def __init__(self):
        self.items = []

    def push(self, item):
        """>>> Stack().push(5).items
        [5]
        """
        self.items.append(item)
        return self

    def pop(self):
        return self.items.pop()


results = doctest.testmod(verbose=False, report=True)
print(results)
finder = doctest.DocTestFinder()
for test in sorted(finder.find(__import__("__main__")), key=lambda t: t.name):
    print(test.name, test.lineno, len(test.examples))
