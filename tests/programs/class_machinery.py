"""Class bodies with calls, metaclasses with __prepare__, class keywords, __set_name__,
descriptors, __slots__, __init_subclass__, __class_getitem__, name mangling."""


def announce(label):
    print("class body:", label)
    return label


class OrderedMeta(type):
    @classmethod
    def __prepare__(mcs, name, bases, **kwargs):
        print("__prepare__", name, [b.__name__ for b in bases], sorted(kwargs.items()))
        return {"prepared_by": mcs.__name__}

    def __new__(mcs, name, bases, ns, **kwargs):
        print("__new__", name, [k for k in ns if not k.startswith("__")], sorted(kwargs.items()))
        return super().__new__(mcs, name, bases, ns)

    def __init__(cls, name, bases, ns, **kwargs):
        super().__init__(name, bases, ns)
        cls.options = kwargs

    def __call__(cls, *args, **kwargs):
        print("metaclass __call__", cls.__name__, args)
        return super().__call__(*args, **kwargs)


class Field:
    def __init__(self, default):
        self.default = default

    def __set_name__(self, owner, name):
        print("__set_name__", owner.__name__, name)
        self.name = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj, self.name, self.default)

    def __set__(self, obj, value):
        print("Field.__set__", self.name, value)
        setattr(obj, self.name, value)


class Model(metaclass=OrderedMeta, flavor=announce("vanilla"), size=len("abc")):
    first = announce("first")
    x = Field(default=announce("x default"))
    y = Field(0)
    squares = [i * i for i in range(3)]
    second = announce("second")

    def __init__(self, x):
        self.x = x

    def __private(self):
        return "private"

    def call_private(self):
        return self.__private()


m = Model(5)
print(m.x, m.y, Model.options, Model.prepared_by, Model.squares)
print(m.call_private(), m._Model__private())
print(type(Model.__dict__["x"]).__name__)


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a):
        self.a = a


s = Slotted(1)
try:
    s.c = 3
except AttributeError as e:
    print("AttributeError:", e)
try:
    print(s.b)
except AttributeError as e:
    print("AttributeError:", e)


class Plugin:
    plugins = {}

    def __init_subclass__(cls, name=None, **kwargs):
        super().__init_subclass__(**kwargs)
        Plugin.plugins[name or cls.__name__.lower()] = cls


class CSV(Plugin, name="csv"):
    pass


class JSON(Plugin):
    pass


print(sorted(Plugin.plugins))


class Generic:
    def __class_getitem__(cls, item):
        return f"{cls.__name__}[{item.__name__}]"


print(Generic[int])


def make_class(n):
    class Local:
        value = n * 2

        def get(self):
            return self.value

    return Local


Local = make_class(21)
print(Local.__qualname__, Local().get())
Dynamic = type("Dynamic", (object,), {"hello": lambda self: "hi", "n": len("four")})
print(Dynamic().hello(), Dynamic.n, Dynamic.__module__)


class Outer:
    class Inner:
        def where(self):
            return __class__.__qualname__

    value = Inner().where()


print(Outer.value, Outer.Inner.where.__qualname__)


def deco(cls):
    print("class decorator on", cls.__name__)
    cls.decorated = True
    return cls


@deco
class Decorated(dict, **{"metaclass": type}):
    pass


print(Decorated.decorated, Decorated.__mro__[1].__name__)
try:
    class BadKw(bogus=1):
        pass
except TypeError as e:
    print("TypeError:", e)
