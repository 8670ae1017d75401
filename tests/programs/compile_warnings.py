"""Warnings the compiler itself emits while compiling this file: SyntaxWarnings for calling a
literal ("perhaps you missed a comma?"), for `is` with a literal, for always-true asserts and
for subscripting a literal with a tuple. The calls then fail at run time."""


def attempt(label, thunk):
    try:
        thunk()
    except TypeError as e:
        print(f"{label}: TypeError: {e}")


attempt("int literal called", lambda: (1)())
attempt("None called", lambda: None(2))
attempt("str literal called", lambda: "abc"(3))
attempt("tuple display called", lambda: (1, 2)(3))
attempt("list display called", lambda: [1](2))
attempt("dict display called", lambda: {}())
attempt("generator expression called", lambda: (x for x in ())())
attempt("f-string called", lambda: f"{1}"())
attempt("list subscripted with tuple", lambda: [1, 2][3, 4])
x = 5
print("is literal", x is 5)  # noqa: F632
assert (x, "always true")
print("done")
