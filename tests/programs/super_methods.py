"""Zero-argument super() in methods, classmethods, staticmethods, __init_subclass__, properties."""


class Base:
    registry = []

    def __init__(self, value):
        print("Base.__init__", type(self).__name__, value)
        self.value = value

    def greet(self, who="world"):
        return f"Base greets {who}"

    @classmethod
    def make(cls, value):
        print("Base.make", cls.__name__)
        return cls(value)

    @staticmethod
    def helper(n):
        return n * 2

    def __init_subclass__(cls, /, tag=None, **kwargs):
        super().__init_subclass__(**kwargs)
        Base.registry.append((cls.__name__, tag))
        print("__init_subclass__", cls.__name__, tag)

    @property
    def doubled(self):
        return self.value * 2


class Middle(Base, tag="mid"):
    def __init__(self, value):
        super().__init__(value + 1)
        print("Middle.__init__ done")

    def greet(self, who="middle"):
        return "Middle+" + super().greet(who)

    @classmethod
    def make(cls, value):
        print("Middle.make", cls.__name__)
        return super().make(value * 10)

    @property
    def doubled(self):
        return super().doubled + 1000


class Leaf(Middle, tag="leaf"):
    def greet(self, who="leaf"):
        parts = [super().greet(who)]
        parts.append(super(Middle, self).greet(who))
        return " | ".join(parts)

    def via_lambda(self):
        f = lambda: super(Leaf, self).greet("lambda")  # noqa: E731
        return f()

    def via_comprehension(self):
        # Before 3.12 a comprehension is its own function: super() there takes the
        # comprehension's iterator as its "self" and fails.
        try:
            return [super().greet(str(i)) for i in range(2)]
        except TypeError as e:
            return f"TypeError: {e}"

    def via_comprehension_explicit(self):
        return [super(Leaf, self).greet(str(i)) for i in range(2)]

    def via_nested_broken(self):
        def inner():
            return super().greet()  # no __class__ cell, no args

        try:
            return inner()
        except RuntimeError as e:
            return f"RuntimeError: {e}"

    def uses_class_cell(self):
        return __class__.__name__


leaf = Leaf.make(1)
print(leaf.value)
print(leaf.greet())
print(leaf.greet(who="kw"))
print(leaf.doubled)
print(leaf.via_lambda())
print(leaf.via_comprehension())
print(leaf.via_comprehension_explicit())
print(leaf.via_nested_broken())
print(leaf.uses_class_cell())
print(Leaf.helper(21))
print(Base.registry)
print([c.__name__ for c in Leaf.__mro__])


class WithNew:
    def __new__(cls, *args, **kwargs):
        print("WithNew.__new__", args, kwargs)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__()
        print("WithNew.__init__", args, kwargs)


WithNew(1, k=2)


class BadSuper:
    def m(self):
        return super().nonexistent()


try:
    BadSuper().m()
except AttributeError as e:
    print("AttributeError:", e)

try:
    super()
except RuntimeError as e:
    print("module-level super():", e)
