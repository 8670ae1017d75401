# requires: 3.15
"""3.15 syntax: explicit lazy imports (PEP 810): the module is loaded at its first use, by
the call that uses it, and a failing lazy import raises there."""
import sys

lazy import colorsys
lazy from os import path as osp
lazy import no_such_module_recompyle_test

print("colorsys loaded before use:", "colorsys" in sys.modules)
print(colorsys.rgb_to_hsv(len("x") / 2, 0.25, 0.5))
print("colorsys loaded after use:", "colorsys" in sys.modules)
print(osp.basename(osp.join("a", "b.py")))
try:
    no_such_module_recompyle_test.f()
except ImportError as e:
    print(type(e).__name__, e)
