"""``recompyle.code_tables``: the 3.11+ location and exception tables of byref's generator copy
keep every original position and handler, two code units later."""

from __future__ import annotations

import dis
import sys

import pytest

from recompyle.byref import generator_code
from recompyle.code_tables import insert_unlocated

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11+ tables")


def sample(a, b=2):  # noqa: ANN001, ANN201
    total = 0
    for i in range(a):
        try:
            total += b // i
        except ZeroDivisionError:
            total -= 1
        finally:
            total += 1
    return [x * 2 for x in range(total)]


def test_positions_and_handlers_move_by_the_prologue() -> None:
    code = sample.__code__
    new = generator_code(code)
    resume = next(i.offset for i in dis.get_instructions(code) if i.opname == "RESUME") // 2
    old_positions = list(code.co_positions())
    positions = list(new.co_positions())
    assert positions[resume : resume + 2] == [(None, None, None, None)] * 2
    assert positions[:resume] + positions[resume + 2 :] == old_positions
    old_handlers = dis.Bytecode(code).exception_entries
    handlers = dis.Bytecode(new).exception_entries
    assert [(h.start, h.end, h.target, h.depth, h.lasti) for h in handlers] == [
        (h.start + 4, h.end + 4, h.target + 4, h.depth, h.lasti) for h in old_handlers
    ]
    assert old_handlers


def test_insert_splits_an_unlocated_entry_and_refuses_a_located_one() -> None:
    none8 = bytes([0x80 | (15 << 3) | 7])  # no location, 8 code units
    assert insert_unlocated(none8, 3, 2) == bytes([0xFA, 0xF9, 0xFC])
    assert insert_unlocated(none8, 8, 1) == none8 + bytes([0xF8])
    short = bytes([0x80 | (0 << 3) | 3, 0x00])  # SHORT0 for 4 units
    with pytest.raises(ValueError, match="prologue has a location"):
        insert_unlocated(short, 2, 2)
