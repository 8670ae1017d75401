# exit: 1
"""Importing an instrumented package module that uses relative imports; reload; resources;
an exception raised inside the helper module reaches the top with its frames."""
import importlib
import importlib.resources
import sys

import dthelpers.rel as rel

print(rel.info())
print(sorted(m for m in sys.modules if m.startswith("dthelpers")))
reloaded = importlib.reload(rel)
print(reloaded is rel, rel.LOADS, rel.info())
print(importlib.resources.files("dthelpers").joinpath("data.txt").read_text(encoding="utf-8").splitlines())
print(rel.__spec__.name, rel.__spec__.origin.rsplit("/", 2)[-2:], rel.__spec__.has_location)
print(rel.__loader__.get_source("dthelpers.rel").splitlines()[0])
print(importlib.util.find_spec("dthelpers.lazy").name)
try:
    from dthelpers import does_not_exist  # noqa: F401
except ImportError as e:
    print("ImportError:", e)
try:
    import dthelpers.no_such_module  # noqa: F401
except ModuleNotFoundError as e:
    print("ModuleNotFoundError:", e)
print("calling into the helper")
rel.fail(1)
