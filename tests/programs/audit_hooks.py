"""PEP 578 audit hooks see the same events: exec/compile/eval from the program, frame access,
and the imports (with the files they open) of a helper module imported after the hook."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTERESTING = {"exec", "compile", "sys._getframe", "import", "open", "builtins.id", "object.__setattr__"}
events = []


busy = []


def hook(event, args):
    if event not in INTERESTING or busy:
        return
    busy.append(1)
    try:
        record(event, args)
    finally:
        busy.pop()


def record(event, args):
    shown = []
    about_here = False
    for a in args:
        if isinstance(a, str) and a.startswith(HERE):
            a = "HERE" + a[len(HERE):]
            about_here = True
        elif isinstance(a, str) and a.startswith("dthelpers"):
            about_here = True
        elif isinstance(a, bytes):
            a = a.decode("utf-8", "replace")
        elif not isinstance(a, (str, int, type(None))):
            a = type(a).__name__
        shown.append(a)
    # Keep what this program does itself, and what importing its helper package does; leave
    # out the standard library's own lazy imports (which depend on what was imported before).
    caller = sys._getframe(2).f_code.co_filename
    if caller == __file__ or about_here:
        events.append((event, tuple(shown)))


sys.addaudithook(hook)
exec("x = 1")
eval("x + 1")
compile("y = 2", "<string>", "exec")
sys._getframe()


def nested():
    return sys._getframe(1).f_code.co_name


nested()
import dthelpers.deprec  # noqa: E402

print(dthelpers.deprec.old_api(1))
for e in events:
    print(e)
