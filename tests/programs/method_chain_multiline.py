# exit: 1
"""Method chains spread over several lines: since 3.11 CPython locates a method call at the
attribute's line, so tracebacks point at `.step(...)`, not at the start of the chain."""
import sys
import traceback


class Fluent:
    def __init__(self, n=0):
        self.n = n

    def step(self, k=1):
        if self.n + k > 3:
            raise OverflowError(f"step {self.n}+{k}")
        return Fluent(self.n + k)


def show(thunk):
    try:
        thunk()
    except OverflowError:
        print(traceback.format_exc().replace(__file__, "HERE"), end="")
        summary = traceback.extract_tb(sys.exc_info()[2])
        print("positions", [(fs.name, fs.lineno, getattr(fs, "colno", None), getattr(fs, "end_colno", None)) for fs in summary][1:])


show(lambda: (
    Fluent()
    .step()
    .step(k=1)
    .step(2)
    .step()
))
show(lambda: Fluent() \
    .step(2) \
    .step(2))
result = (
    Fluent(1)
        .step(1)
        .step(
            5
        )
)
