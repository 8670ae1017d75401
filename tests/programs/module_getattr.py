"""Module-level __getattr__/__dir__ (PEP 562) in an imported helper module."""
import dthelpers
import dthelpers.lazy as lazy
from dthelpers.lazy import lazy_from_import

print(dthelpers.helper_call(1))
print(lazy.eager, lazy.lazy_one, lazy.lazy_one, lazy_from_import)
print(lazy.loaded())
print([n for n in dir(lazy) if not n.startswith("_")])
print(getattr(lazy, "lazy_two"), getattr(lazy, "nope", "default"))
try:
    lazy.missing
except AttributeError as e:
    print("AttributeError:", e)
try:
    from dthelpers.lazy import other_missing  # noqa: F401
except ImportError as e:
    print("ImportError:", e)
print(hasattr(lazy, "lazy_three"), lazy.loaded())


def who_asks():
    return lazy.caller


print(who_asks())
print(lazy.__name__, lazy.__spec__.name, lazy.__file__.rsplit("/", 2)[-2:])
