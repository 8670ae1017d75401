"""locals/vars/dir/globals at module level, in functions, in class bodies and in comprehensions."""
import sys

a_module_var = 1


def show_keys(label, mapping):
    print(label, sorted(k for k in mapping))


show_keys("module globals()", globals())
show_keys("module locals()", locals())
show_keys("module vars()", vars())
print("module dir()", dir())
print("globals() is locals()", globals() is locals())
print("vars() is globals()", vars() is globals())
import __main__  # noqa: E402

print("__main__ dict is globals()", __main__.__dict__ is globals())
print("__name__", __name__)
print("__file__ basename", __file__.rsplit("/", 1)[-1])
print("__builtins__ type", type(__builtins__).__name__)
print("__spec__ name", getattr(__spec__, "name", None))
print("__package__", repr(__package__))
print("__doc__", repr(__doc__))
# The module attribute (from 3.14, PEP 649, the bare name is no global) and its source.
print("__annotations__", sys.modules[__name__].__annotations__)
print("__annotate__", type(globals().get("__annotate__")).__name__)
cached = globals().get("__cached__")
print("__cached__", None if cached is None else cached.rsplit("/", 2)[-2:])


def func(p, *args, q=2, **kw):
    local_one = p + q
    print("func locals()", sorted(locals()))
    print("func dir()", dir())
    print("func vars()", sorted(vars()))
    print("func locals values", {k: v for k, v in sorted(locals().items())})
    print("globals() same", globals() is sys.modules[__name__].__dict__)

    def nested():
        return local_one

    print("with closure locals()", sorted(locals()))
    return nested


func(1, 2, 3, z=4)()


class Klass:
    attr = 1
    print("class body locals()", sorted(locals()))
    print("class body dir()", dir())
    print("class body vars()", sorted(vars()))
    print("class __qualname__", __qualname__)
    print("class __module__", __module__)

    def method(self):
        print("method locals()", sorted(locals()))
        return __class__

    print("class body locals after def", sorted(locals()))


print("method __class__", Klass().method().__name__)
print("comprehension locals", [sorted(locals()) for _ in range(1)])
print("genexp locals", list(sorted(locals()) for _ in range(1)))
lam = lambda x, y=3: sorted(locals())  # noqa: E731
print("lambda locals", lam(1))
print("vars(obj)", vars(Klass()))
print("vars(Klass) keys", sorted(k for k in vars(Klass) if not k.startswith("__")))
