"""Reference counts seen from inside calls, and bound-method objects: a plain `obj.meth()`
call does not create a bound method (LOAD_METHOD), so nothing else holds obj during the call."""
import sys
import weakref


class Obj:
    def meth(self):
        return sys.getrefcount(self)

    def ident(self):
        return id(self.meth) == id(self.meth)


def refs_of_arg(x):
    return sys.getrefcount(x)


o = Obj()
print("method refcount", o.meth())
print("function refcount", refs_of_arg(o))
print("getrefcount direct", sys.getrefcount(o))
print("temporary refcount", refs_of_arg(Obj()))
print("method on temporary", Obj().meth())
print("bound methods equal", o.meth == o.meth, o.meth is o.meth)


class Dying:
    log = []

    def meth(self):
        ref = weakref.ref(self, lambda r: Dying.log.append("finalized"))
        return ref

    def __del__(self):
        Dying.log.append("__del__")


r = Dying().meth()
Dying.log.append("after call")
print(Dying.log, r())


class Big:
    pass


def consume(obj):
    # The caller passed its only reference: once this frame drops it, the object is gone.
    ref = weakref.ref(obj)
    del obj
    return ref() is None


print("argument freed by del inside the callee:", consume(Big()))
