"""What lies beyond the module frame: f_back, inspect.stack depth, traceback.print_stack,
warnings with a stacklevel past the module, and logging's stack_info."""
import inspect
import logging
import sys
import traceback
import warnings

frame = sys._getframe()
print("module f_back", None if frame.f_back is None else frame.f_back.f_code.co_name)
print("inspect.stack depth", len(inspect.stack(0)))
print("stack functions", [fi.function for fi in inspect.stack(0)])
sys.stdout.flush()
traceback.print_stack(file=sys.stdout)
print("extract_stack", [(fs.name, fs.lineno) for fs in traceback.extract_stack()])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    warnings.warn("past the module", UserWarning, stacklevel=2)
    warnings.warn("far past the module", UserWarning, stacklevel=5)
for w in caught:
    print("warning at", w.filename, w.lineno, w.message)


def depth():
    return len(inspect.stack(0))


print("depth from function", depth())
warnings.warn("printed to stderr", stacklevel=2)


def log_with_stack():
    logging.basicConfig(stream=sys.stdout, format="%(funcName)s:%(lineno)d %(message)s")
    logging.getLogger("frames").warning("with stack", stack_info=True)


log_with_stack()
