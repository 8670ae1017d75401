"""A class body whose calls add over 256 constants (one site id each): on 3.9 the
peephole optimizer's folded defaults tuple then needs an EXTENDED_ARG, and line events must
still be those of the plain run."""
import sys

events = []


def d():
    return 0


def tracer(frame, event, arg):
    if frame.f_code.co_name == "C":
        events.append((event, frame.f_lineno))
        return tracer
    return None


sys.settrace(tracer)


class C:
    r0 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r1 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r2 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r3 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r4 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r5 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r6 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r7 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r8 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r9 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r10 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r11 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r12 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]
    r13 = [d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d(), d()]

    def method(self, a,
               error=None, event="line",
               flag=False):
        return (a, error, event, flag)


sys.settrace(None)
print(events)
print(C().method(1))
