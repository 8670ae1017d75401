# exit: 1
"""A custom sys.excepthook and an atexit handler that looks at sys.last_value, as post-mortem
tools do: an uncaught exception sets sys.last_type/last_value/last_traceback, then calls
the hook."""
import atexit
import sys
import traceback


def hook(exc_type, exc, tb):
    print("hook called with", exc_type.__name__, exc)
    print("hook sees", [(fs.name, fs.lineno) for fs in traceback.extract_tb(tb)])
    print("first frame's f_back is None:", tb.tb_frame.f_back is None)
    print("last_value set before hook:", getattr(sys, "last_value", None) is exc)


def post_mortem():
    value = getattr(sys, "last_value", None)
    print("atexit: last_value", repr(value))
    tb = getattr(sys, "last_traceback", None)
    print("atexit: last_traceback frames", [f.name for f in traceback.extract_tb(tb)] if tb else None)


atexit.register(post_mortem)
sys.excepthook = hook


def explode(n):
    return {"n": n}["missing"]


print("about to fail")
explode(1)
