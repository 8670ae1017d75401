"""inspect.getsource/getsourcelines/getfile/getmodule and linecache on the program itself."""
import inspect
import linecache
import os


def documented(a, b=2, *args, c, **kw):
    """A documented function."""
    total = a + b  # a comment
    return total


class Shape:
    """A class."""

    def area(self):
        return 0

    @property
    def name(self):
        return type(self).__name__


square = lambda s: s * s  # noqa: E731


def outer():
    def inner():
        return 1

    return inner


print(inspect.getsource(documented))
lines, start = inspect.getsourcelines(Shape.area)
print(start, lines)
print(inspect.getsource(Shape))
print(inspect.getsource(square).strip())
print(inspect.getsource(outer()))
print(inspect.getsource(Shape.name.fget).strip())
print(os.path.basename(inspect.getfile(documented)), inspect.getmodule(documented).__name__)
print(inspect.getdoc(documented), inspect.getcomments(documented))
print(inspect.signature(documented))
print(linecache.getline(__file__, documented.__code__.co_firstlineno).rstrip())
print(documented.__code__.co_firstlineno, Shape.area.__code__.co_firstlineno, square.__code__.co_firstlineno)
print(inspect.getsource(inspect.currentframe()).count("\n") > 10)
print(len(inspect.getsource(__import__("__main__")).splitlines()))
frame = inspect.currentframe()
print(inspect.getframeinfo(frame, context=3).code_context)
