"""pickle and copy of objects defined in __main__: __reduce__, __getstate__, __deepcopy__,
copyreg, functions and classes by reference."""
import copy
import copyreg
import pickle


class Plain:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def __eq__(self, other):
        return type(other) is Plain and vars(self) == vars(other)

    def __repr__(self):
        return f"Plain({self.a!r}, {self.b!r})"


class Reduced:
    def __init__(self, value):
        print("Reduced.__init__", value)
        self.value = value

    def __reduce__(self):
        return (Reduced, (self.value + 1,))


class Stateful:
    def __init__(self):
        self.data = [1, 2]
        self.transient = "drop me"

    def __getstate__(self):
        print("__getstate__")
        state = dict(vars(self))
        del state["transient"]
        return state

    def __setstate__(self, state):
        print("__setstate__", sorted(state))
        self.__dict__.update(state)
        self.transient = "restored"


class Copyable:
    def __init__(self, items):
        self.items = items

    def __copy__(self):
        print("__copy__")
        return Copyable(self.items)

    def __deepcopy__(self, memo):
        print("__deepcopy__", len(memo))
        return Copyable(copy.deepcopy(self.items, memo))


class ViaCopyreg:
    def __init__(self, x):
        self.x = x


def reduce_via(obj):
    print("copyreg reducer")
    return ViaCopyreg, (obj.x * 2,)


copyreg.pickle(ViaCopyreg, reduce_via)


def top_level_function(x):
    return x + 1


for proto in (0, 2, pickle.HIGHEST_PROTOCOL):
    p = Plain([1, {"k": (2, 3)}], "s")
    q = pickle.loads(pickle.dumps(p, protocol=proto))
    print(proto, q, q == p, q is p)
r = pickle.loads(pickle.dumps(Reduced(1)))
print("reduced", r.value)
s = pickle.loads(pickle.dumps(Stateful()))
print("stateful", s.data, s.transient)
v = pickle.loads(pickle.dumps(ViaCopyreg(5)))
print("copyreg", v.x)
print(pickle.loads(pickle.dumps(top_level_function))(1), pickle.loads(pickle.dumps(Plain)).__name__)
print(pickle.loads(pickle.dumps(len)) is len)
c = Copyable([[1], [2]])
c1, c2 = copy.copy(c), copy.deepcopy(c)
print(c1.items is c.items, c2.items == c.items, c2.items is c.items, c2.items[0] is c.items[0])
shared = [1]
cyclic = {"a": shared, "b": shared}
cyclic["self"] = cyclic
d = copy.deepcopy(cyclic)
print(d["a"] is d["b"], d["self"] is d, d["a"] is shared)
print(copy.deepcopy(Reduced(10)).value, copy.copy(Stateful()).transient)
try:
    pickle.dumps(lambda: 1)
except (pickle.PicklingError, AttributeError) as e:
    print(type(e).__name__, str(e).split(" at 0x")[0])


def local_scope():
    class Local:
        pass

    return Local()


try:
    pickle.dumps(local_scope())
except (pickle.PicklingError, AttributeError) as e:
    print(type(e).__name__, e)
