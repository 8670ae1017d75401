"""Helper package imported by some differential-test programs (instrumented too)."""


def helper_call(x):
    return ("helper", x)
