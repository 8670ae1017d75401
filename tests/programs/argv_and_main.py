# args: first --flag=2 "with space"
# exit: 3
"""sys.argv, sys.path[0] and __main__ as the program sees them."""
import os
import sys

print("argv[1:]", sys.argv[1:])
print("argv[0] basename", os.path.basename(sys.argv[0]))
print("path[0] is program dir or cwd", sys.path[0] in (os.path.dirname(os.path.abspath(__file__)), os.getcwd()))
print("__name__", __name__)
print("main module is me", sys.modules["__main__"].__dict__ is globals())
print("__main__ has main function", hasattr(sys.modules["__main__"], "main"))


def main(argv):
    return len(argv)


if __name__ == "__main__":
    print("main returned", main(sys.argv))
    raise SystemExit(main(sys.argv[1:]))
