"""warnings.warn with stacklevel, caught and printed to stderr with the source line."""
import os
import warnings


def where(w):
    return f"{os.path.basename(w.filename)}:{w.lineno}: {w.category.__name__}: {w.message}"


def deprecated_api(level):
    warnings.warn(f"deprecated (stacklevel={level})", DeprecationWarning, stacklevel=level)


def wrapper(level):
    return deprecated_api(level)


class Widget:
    def old(self):
        warnings.warn("Widget.old is old", FutureWarning, stacklevel=2)
        return 1

    @property
    def prop(self):
        warnings.warn("prop warns", UserWarning, stacklevel=2)
        return 2


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    deprecated_api(1)
    deprecated_api(2)
    wrapper(3)
    wrapper(
        2
    )
    Widget().old()
    Widget().prop  # noqa: B018
    [deprecated_api(2) for _ in range(1)]
    (lambda: deprecated_api(2))()
    warnings.warn_explicit("explicit", UserWarning, "fake.py", 99)
for w in caught:
    print(where(w))

# These go to stderr through the default showwarning (with the source line).
warnings.simplefilter("default")
wrapper(3)
Widget().old()
total = 1 + Widget().old()


def loop():
    for i in range(3):
        warnings.warn("once per location", UserWarning)


loop()
print("done", total)

# Warnings raised in a helper module on behalf of this one (stacklevel=2) or of itself
# (stacklevel=1); the "default" filter set above shows each once per location.
import dthelpers.deprec  # noqa: E402

dthelpers.deprec.old_api(1)
dthelpers.deprec.hidden(2)
dthelpers.deprec.pending(3)
print("registry keys", sorted(str(k[0]) for k in globals().get("__warningregistry__", {}) if k != "version"))
