"""Properties (getter/setter/deleter), lambdas inside methods, __getattr__ fallbacks."""


class Temperature:
    def __init__(self, celsius):
        self._c = celsius
        self.log = []

    @property
    def celsius(self):
        self.log.append("get")
        return self._c

    @celsius.setter
    def celsius(self, value):
        self.log.append(f"set {value}")
        self._c = value

    @celsius.deleter
    def celsius(self):
        self.log.append("del")
        self._c = None

    fahrenheit = property(lambda self: self.celsius * 9 / 5 + 32)

    def scaled(self, factors):
        return list(map(lambda f: round(self.celsius * f, 2), factors))

    def sorter(self, items):
        return sorted(items, key=lambda kv: (kv[1], kv[0]))

    def make_adders(self):
        return [lambda x, i=i: x + i + self._c for i in range(3)]

    @property
    def broken(self):
        return self.missing_attribute  # AttributeError inside property

    def __getattr__(self, name):
        self.log.append(f"__getattr__ {name}")
        if name == "missing_attribute":
            raise AttributeError(f"no {name} here")
        return f"<{name}>"


t = Temperature(20)
print(t.celsius, t.fahrenheit)
t.celsius = 25
print(t.celsius)
del t.celsius
print(t.celsius)
t.celsius = 10
print(t.scaled([1, 1.5, 0.1]))
print(t.sorter({"b": 2, "a": 2, "c": 1}.items()))
print([f(100) for f in t.make_adders()])
print(t.anything)
print(t.broken)
print(t.log)

compose = lambda f, g: lambda x: f(g(x))  # noqa: E731
inc = lambda x: x + 1  # noqa: E731
dbl = lambda x: x * 2  # noqa: E731
print(compose(inc, dbl)(5), compose(dbl, inc)(5))
print((lambda *a, **k: (a, sorted(k.items())))(1, 2, z=3, y=4))
print((lambda: (yield))  .__name__)
print(sorted(["bb", "a", "ccc"], key=lambda s: -len(s)))

ro = property(lambda self: 42)


class RO:
    value = ro


try:
    RO().value = 1
except AttributeError as e:
    print("AttributeError:", e)
try:
    del RO().value
except AttributeError as e:
    print("AttributeError:", e)
