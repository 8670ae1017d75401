"""Each sub-expression of a call is evaluated exactly once, iterables are iterated once,
mappings are read through keys() and __getitem__ the way CPython does."""
counts = {}


def once(label, value):
    counts[label] = counts.get(label, 0) + 1
    return value


def f(*args, **kwargs):
    return args, sorted(kwargs.items())


class Iter:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        print("  __iter__")
        return iter(self.items)

    def __len__(self):
        print("  __len__")
        return len(self.items)


class Mapping:
    def __init__(self, data):
        self.data = data

    def keys(self):
        print("  keys()")
        return list(self.data)

    def __getitem__(self, key):
        print(f"  __getitem__({key!r})")
        return self.data[key]


class Callee:
    calls = 0

    def __call__(self, *a, **k):
        Callee.calls += 1
        return ("called", a, sorted(k.items()))


print(f(*Iter([1, 2, 3])))
print(f(0, *Iter([1]), 2, *Iter([3])))
print(f(**Mapping({"a": 1, "b": 2})))
print(f(x=0, **Mapping({"y": 1}), z=2))
print(once("callee", f)(once("arg", 1), k=once("kw", 2)))
print(once("obj", Callee())(once("a2", 3)))
print(Callee.calls)


def gen():
    print("  gen start")
    yield 1
    print("  gen middle")
    yield 2
    print("  gen end")


print(f(*gen()))
print(sum(x for x in gen()))
it = iter([1, 2, 3])
print(f(*it), list(it))
print(f(once("n", 5) if once("test", True) else once("no", 0)))
lst = []
print(f(lst.append(once("append", 1)), lst))
print(f(*[once("list-elt", 1)], **{"k": once("dict-val", 2)}))
counter = iter(range(100))
print(f(next(counter), next(counter), k=next(counter)), next(counter))
print(sorted(counts.items()))
