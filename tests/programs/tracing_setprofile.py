"""sys.setprofile sees call/return and c_call/c_return events for Python and builtin callees."""
import sys

HERE = __file__
events = []


def profiler(frame, event, arg):
    if frame.f_code.co_filename != HERE or frame.f_code.co_name == "profiler":
        return
    if event.startswith("c_"):
        events.append(f"{event}:{getattr(arg, '__qualname__', type(arg).__name__)} in {frame.f_code.co_name}")
    else:
        events.append(f"{event}:{frame.f_code.co_name}")


def add(a, b):
    return a + b


def work():
    total = add(1, 2)
    total += len([1, 2, 3])
    total += max(add(3, 4), 0)
    return sorted([3, 1, 2], key=abs)[0] + total


sys.setprofile(profiler)
result = work()
sys.setprofile(None)
print(result)
for e in events:
    print(e)
