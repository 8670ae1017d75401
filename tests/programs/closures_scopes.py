"""Closures, nonlocal, global, cells, late binding, class scopes, del."""
counter = 0


def bump(n=1):
    global counter
    counter += n
    return counter


def make_counter(start):
    count = start

    def increment(by=1):
        nonlocal count
        count += by
        return count

    def get():
        return count

    return increment, get


inc, get = make_counter(10)
print(inc(), inc(5), get(), bump(), bump(bump()))
print(inc.__closure__[0].cell_contents, [c.cell_contents for c in get.__closure__])
print(inc.__code__.co_freevars, make_counter.__code__.co_cellvars)

late = [lambda: i for i in range(3)]
early = [lambda i=i: i for i in range(3)]
print([f() for f in late], [f() for f in early])


def outer():
    x = "outer"

    def middle():
        def inner():
            nonlocal x
            x = x + "+inner"
            return x

        return inner()

    middle()
    return x


print(outer())


def global_in_nested():
    def set_global():
        global created_later
        created_later = "created"

    set_global()
    return created_later  # noqa: F821


print(global_in_nested())

x = "module"


class Scope:
    x = "class"
    from_class = [x for _ in range(1)]
    y = (lambda: x)()

    def method(self):
        return x


print(Scope.from_class, Scope.y, Scope().method())


def unbound():
    try:
        print(value)  # noqa: F823
    except UnboundLocalError as e:
        print("UnboundLocalError:", e)
    value = 1
    return value


unbound()


def free_unbound():
    def inner():
        return later

    try:
        inner()
    except NameError as e:
        print("NameError:", e)
    later = 1
    return inner()


print(free_unbound())


def deleter():
    v = 1
    del v
    try:
        return v  # noqa: F821
    except UnboundLocalError as e:
        return f"UnboundLocalError: {e}"


print(deleter())
try:
    print(never_defined)  # noqa: F821
except NameError as e:
    print("NameError:", e)


def accumulate():
    total = 0

    def add(v):
        nonlocal total
        total += v

    list(map(add, range(5)))
    return total


print(accumulate(), counter)
