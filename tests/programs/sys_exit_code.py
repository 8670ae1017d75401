# exit: 3
"""sys.exit with an integer code from deep inside calls, with finally blocks and atexit."""
import atexit
import sys


@atexit.register
def goodbye():
    print("atexit handler runs")


atexit.register(print, "atexit with args", 1, 2)


def deep(n):
    try:
        if n == 0:
            sys.exit(3)
        return deep(n - 1)
    finally:
        print("finally", n)


try:
    deep(2)
except SystemExit as e:
    print("caught SystemExit", e.code)
    print("re-raising")
    raise
