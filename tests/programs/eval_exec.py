"""eval/exec with and without explicit namespaces, at module level and in functions."""

x = 10


def show(label, value):
    print(f"{label}: {value!r}")


show("module eval", eval("x + 1"))
show("module eval with call", eval("len([x, x])"))
exec("y = x * 2")
show("module exec defined y", y)  # noqa: F821
ns = {"x": 3}
exec("z = x + 1\ndef g(a):\n    return a * z\n", ns)
show("exec ns z", ns["z"])
show("exec ns g(2)", ns["g"](2))
show("eval ns", eval("x * 7", {"x": 6}))
show("eval globals+locals", eval("a + b", {"a": 1}, {"b": 2}))
show("eval builtins missing", sorted(k for k in ns if k != "__builtins__"))


def in_function(p, q=5):
    r = p + q
    show("fn eval locals", eval("p + q + r"))
    show("fn eval globals x", eval("x"))
    show("fn eval explicit locals()", eval("r * 2", globals(), locals()))
    exec("s = p * 100")
    show("fn exec sees locals copy", sorted(k for k in locals()))
    loc = {}
    exec("t = p + 1", {"p": p}, loc)
    show("fn exec into dict", loc)
    code = compile("p - q", "<compiled>", "eval")
    show("fn compiled eval", eval(code))

    def inner():
        return eval("p")  # p is not a free var of inner -> NameError

    try:
        inner()
    except NameError as e:
        show("inner eval NameError", str(e))

    def inner2():
        p  # noqa: B018 -- make p a free variable
        return eval("p + 1")

    show("inner2 eval closure", inner2())
    return r


show("in_function", in_function(1))
show("lambda eval", (lambda a: eval("a * 3"))(4))
show("comprehension eval", [eval("i") for i in range(3)] if False else "skipped")
g = {}
exec(compile("def h():\n    return __name__\n", "<h>", "exec"), g)
show("exec'd function __name__", g["h"]())
show("exec with module globals", (exec("w = 5", globals()), globals()["w"])[1])
try:
    eval("1 +")
except SyntaxError as e:
    show("eval syntax error", (e.msg, e.lineno, e.offset, e.text))
try:
    exec("def broken(:\n    pass")
except SyntaxError as e:
    show("exec syntax error", (e.msg, e.lineno, e.offset))
try:
    eval("undefined_name_qq + 1")
except NameError as e:
    show("eval NameError", str(e))
