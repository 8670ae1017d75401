"""Object lifetimes: temporaries passed as arguments die when the call returns, exactly when
they would without instrumentation (observed through __del__ and weakref callbacks)."""
import gc
import weakref


class Noisy:
    def __init__(self, name):
        self.name = name

    def __del__(self):
        print("  del", self.name)


def use(obj):
    print("  using", obj.name)
    return obj.name


def drop(obj):
    return None


print("call with temporary")
use(Noisy("temp1"))
print("after call 1")
result = use(Noisy("temp2")) + "!"
print("after call 2", result)
print("nested temporaries")
use(Noisy(use(Noisy("inner"))))
print("after nested")
print("keyword temporaries")
drop(obj=Noisy("kw"))
print("after kw")
print("starred temporaries")
drop(*[Noisy("star")])
print("after star")
x = Noisy("named")
print("rebinding")
x = use(x)
print("after rebinding")
ref_log = []
obj = Noisy("weak")
r = weakref.ref(obj, lambda ref: ref_log.append("weakref callback"))
del obj
print("after del", ref_log, r())


def raiser(obj):
    raise ValueError(obj.name)


try:
    raiser(Noisy("in exception"))
except ValueError as e:
    print("caught", e)
    del e
print("after except")
gc.collect()
print("end")
