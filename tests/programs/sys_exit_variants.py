# exit: 0
"""SystemExit(None), exit codes as objects, and an exit inside a thread-free nested call."""
import sys


def codes():
    for code in (None, 0, 5, "text", [1, 2]):
        try:
            sys.exit(code)
        except SystemExit as e:
            print("SystemExit", repr(e.code), repr(e.args))


codes()
try:
    raise SystemExit(2, "extra")
except SystemExit as e:
    print("two args", e.code)
try:
    exit(4)
except SystemExit as e:
    print("site exit()", e.code)
print("done")
sys.exit(None)
