"""inspect.stack/currentframe/getframeinfo/getouterframes inside the program."""
import inspect
import sys

HERE = __file__


def mine(frames):
    out = []
    for fi in frames:
        if fi.filename != HERE:
            continue
        pos = getattr(fi, "positions", None)
        pos = tuple(pos) if pos is not None else None
        ctx = fi.code_context[0].rstrip("\n") if fi.code_context else None
        out.append((fi.function, fi.lineno, fi.index, ctx, pos))
    return out


def level3(x):
    frame = inspect.currentframe()
    print("currentframe", frame.f_code.co_name, frame.f_lineno)
    info = inspect.getframeinfo(frame)
    print("getframeinfo", info.function, info.lineno, info.code_context)
    for entry in mine(inspect.stack()):
        print("stack", entry)
    for entry in mine(inspect.getouterframes(frame, context=2)):
        print("outer", entry)
    print("caller args", inspect.getargvalues(frame.f_back))
    return x


def level2(x, y=1):
    return level3(
        x
        + y
    ) + 1


def level1():
    total = level2(1,
                   y=2)
    return total


class Holder:
    def meth(self):
        return [f[0] for f in mine(inspect.stack())]


print(level1())
print(Holder().meth())
print([x for x in mine(inspect.stack(0))])
try:
    1 / 0
except ZeroDivisionError:
    tb = sys.exc_info()[2]
    print("trace", [(f.function, f.lineno) for f in inspect.trace()])
print("isframe", inspect.isframe(inspect.currentframe()))
