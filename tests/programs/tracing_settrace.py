"""sys.settrace sees the same call/line/return/exception events and line numbers."""
import sys

HERE = __file__
events = []


def tracer(frame, event, arg):
    if frame.f_code.co_filename != HERE:
        return None
    if frame.f_code.co_name == "tracer":
        return None
    detail = ""
    if event == "return":
        detail = repr(arg)
    elif event == "exception":
        detail = arg[0].__name__
    events.append(f"{event}:{frame.f_code.co_name}:{frame.f_lineno}{':' + detail if detail else ''}")
    return tracer


def add(a, b):
    return a + b


def compute(n):
    total = 0
    for i in range(n):
        total = add(total, i)
    try:
        add(None, 1)
    except TypeError:
        total += 100
    return total


def gen():
    yield add(1, 2)
    yield add(3, 4)


sys.settrace(tracer)
result = compute(3)
values = list(gen())
nested = add(add(1, 2),
             add(3, 4))
sys.settrace(None)
print(result, values, nested)
for e in events:
    print(e)
