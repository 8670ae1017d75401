# requires: 3.11
# exit: 1
"""except* with exception groups, notes, and handlers that call functions."""


def raise_group(*excs):
    raise ExceptionGroup("batch", list(excs))


def handle(label, eg):
    print(label, type(eg).__name__, sorted(repr(e) for e in eg.exceptions))


try:
    raise_group(ValueError("v1"), TypeError("t1"), ValueError("v2"))
except* ValueError as eg:
    handle("ValueError group", eg)
except* TypeError as eg:
    handle("TypeError group", eg)

try:
    try:
        raise_group(KeyError("k"), OSError("o"))
    except* KeyError as eg:
        handle("inner KeyError", eg)
except ExceptionGroup as rest:
    handle("left over", rest)


def nested():
    raise ExceptionGroup("outer", [ValueError("a"), ExceptionGroup("inner", [TypeError("b")])])


try:
    nested()
except* TypeError as eg:
    print("split:", repr(eg))
except* ValueError as eg:
    print("split:", repr(eg))

e = ValueError("with notes")
e.add_note("note one")
e.add_note(str(len("two")))
print(e.__notes__)
eg = ExceptionGroup("grouped", [ValueError(1), TypeError(2), ValueError(3)])
match, rest = eg.split(ValueError)
print(repr(match), repr(rest))
print(repr(eg.subgroup(lambda x: isinstance(x, TypeError))))
try:
    raise_group(ValueError("handled"))
except* ValueError:
    print("bare except* handled")
print("now dying with an uncaught group")
raise_group(ValueError("left"), ExceptionGroup("sub", [KeyError("deep"), e]))
