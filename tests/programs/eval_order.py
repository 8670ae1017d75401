"""Evaluation order of every part of a call: callee, positional, starred, keyword, **."""
trace = []


def t(label, value=None):
    trace.append(label)
    return value if value is not None else label


def report(title):
    print(title, trace)
    trace.clear()


def f(*args, **kwargs):
    trace.append("call f")
    return (args, sorted(kwargs.items()))


def returns_f(label):
    trace.append(label)
    return f


class Obj:
    def __init__(self):
        self.n = 0

    def meth(self, *a, **k):
        trace.append("call meth")
        return a

    @property
    def prop(self):
        trace.append("prop get")
        return f

    def __getattr__(self, name):
        trace.append(f"__getattr__ {name}")
        return f

    def __call__(self, *a):
        trace.append("Obj.__call__")
        return lambda *b: ("curried", a, b)


print(returns_f("callee")(t("a1"), t("a2")))
report("positional:")
print(returns_f("callee")(t("a"), *t("star", [1, 2]), t("b"), k=t("kv"), **t("dstar", {"z": 1})))
report("mixed:")
print(f(*t("s1", [1]), *t("s2", [2]), k1=t("k1"), **t("d1", {"d1": 1}), k2=t("k2"), **t("d2", {"d2": 2})))
report("multiple stars:")
o = Obj()
print(o.meth(t("m1"), t("m2")))
report("method:")
print(o.prop(t("p1")))
report("property returning callable:")
print(o.dynamic(t("g1")))
report("__getattr__:")
print(o(t("c1"))(t("c2")))
report("chained f(x)(y):")
print(f(f(t("in1")), f(t("in2"), f(t("in3")))))
report("nested:")
print(f(y := t("walrus", 5), y + 1))
report("walrus:")
print(f(t("sc1", 0) and t("never"), t("sc2", 1) or t("never"), t("sc3", 0) or t("sc4", 4)))
report("short-circuit:")
print(f(t("c1", 1) < t("c2", 2) < t("c3", 3), t("c4", 5) < t("c5", 4) < t("never", 9)))
report("comparison chain:")
print(f(t("cond", True) and t("a") if t("test", 1) else t("never")))
report("conditional:")
d = {"k": f}
print(d[t("key", "k")](t("arg")))
report("subscript callee:")
print(f(*(t(str(i)) for i in range(3))))
report("starred generator:")
print(f(**{t("kx"): t("vx")}, z=t("z")))
report("dict display in **:")
print(getattr(o, t("name", "meth"))(t("x")))
report("getattr callee:")
print([f(t(i)) for i in ("l1", "l2")])
report("comprehension:")
print((t("tup1"), f(t("tup2")), t("tup3")))
report("tuple display:")
print(t("lhs", 1) + f(t("rhs")).__len__())
report("binary op:")
print(f(t("a", 1), t("b", 2))[t("idx", 0)])
report("subscript of call result:")
x = [0]
x[t("target", 0)] = f(t("value"))
report("assignment:")
box = {"k": 1}
t("box", box)[t("key", "k")] += f(t("aug"))[0].__len__()
report("augmented assignment:")
t("obj", o).meth(t("marg"))
report("call on call result:")
del t("dict", box)[t("delkey", "k")]
report("del subscript:")


class CM:
    def __init__(self, *a):
        trace.append("CM init")

    def __enter__(self):
        trace.append("enter")
        return self

    def __exit__(self, *exc):
        trace.append("exit")


with t("cm", CM)(t("cm-arg")) as cm, returns_f("second")(t("s-arg")) and CM():
    trace.append("body")
report("with items:")
for item in t("iterable-callee", iter)(t("iter-arg", [1])):
    trace.append(f"loop {item}")
report("for target:")
try:
    returns_f("callee")(t("a"), 1 / 0, t("never"))
except ZeroDivisionError:
    report("argument raises:")
try:
    t("noncallable", 5)(t("arg-before-error"))
except TypeError:
    report("not callable raises after args:")
a_, *b_ = f(t("unpack"))
report("star assignment:")
print(t("left", "L") if f(t("cond-call")) else t("right"))
report("ternary on call:")
print(-len(f(t("unary"))[0]), not f(), 2 ** len(f(t("pow"))[0]) ** 2)
report("unary and power:")
