# A cycle with __del__ collected by the interpreter's last garbage collection, after it
# restored the builtins from its start-up copy: instrumented code must still run there.
import weakref
class A:
    def __del__(self):
        print("del", len([1]))
a = A()
a.self = a  # a cycle: collected by the finalisation GC
