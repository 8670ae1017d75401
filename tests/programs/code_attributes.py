"""What functions and code objects say about themselves: names, qualnames, first line numbers,
argument and variable names, defaults, closures, flags that matter (generator, coroutine)."""
import dis
import inspect


def plain(a, b=1, *args, c, d=2, **kw):
    e = a + b
    return e


def gen_func():
    yield 1


async def coro_func():
    return 1


async def agen_func():
    yield 1


def closure_maker(x):
    y = x + 1

    def closure(z):
        return x + y + z

    return closure


class C:
    def method(self):
        return self

    @classmethod
    def cmethod(cls):
        return cls

    class Nested:
        def deep(self):
            return lambda: 1


funcs = [plain, gen_func, coro_func, agen_func, closure_maker, closure_maker(1), C.method,
         C.cmethod, C.Nested.deep, C.Nested().deep(), lambda q: q]
for f in funcs:
    code = f.__code__
    print(
        f.__name__,
        f.__qualname__,
        f.__module__,
        code.co_name,
        getattr(code, "co_qualname", None),
        code.co_firstlineno,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        getattr(f, "__defaults__", None),
        getattr(f, "__kwdefaults__", None),
        inspect.isgeneratorfunction(f),
        inspect.iscoroutinefunction(f),
        inspect.isasyncgenfunction(f),
        code.co_filename == __file__,
    )
print(sorted({ln for _, ln in dis.findlinestarts(plain.__code__) if ln is not None}))
print(sorted({ln for _, ln in dis.findlinestarts(closure_maker.__code__) if ln is not None}))
print(inspect.getfullargspec(plain))
