"""CPython 3.11+'s per-code tables, as ``byref`` edits them when it makes a generator copy of
a function (``byref.generator_code`` inserts the two-instruction generator prologue before
``RESUME``): the exception table's entries move, and the location table gets an entry with
no location for the inserted instructions.

The formats are CPython's (``Objects/locations.md`` and ``Objects/exception_handling_notes.txt``
in its source); the names below are its own where it has them. The native transform decodes
the same location table with named variants (``crates/recompyle_transform/src/linetable.rs``)
to remap columns; this module only needs to skip entries and add one.
"""

from __future__ import annotations

__all__ = ["insert_unlocated", "shift_exception_table"]

# --- the location table (co_linetable) ----------------------------------------------------
# Each entry starts with a byte 1CCCCLLL: the code C (below) and L = code units covered - 1.
_ENTRY_START = 0x80
_CODE_SHIFT = 3
_CODE_MASK = 0xF
_LENGTH_MASK = 0x7
# The codes (PY_CODE_LOCATION_INFO_*): 0-9 SHORT (one more byte: columns); 10-12 ONE_LINE
# (two more bytes: columns, the line 0-2 below the previous); NO_COLUMNS (a line delta,
# one signed varint); LONG (line delta, end line delta, column, end column: four varints);
# NONE (no location: the running line stays, nothing follows).
_SHORT_LAST = 9
_ONE_LINE = (10, 11, 12)
_NO_COLUMNS = 13
_LONG = 14
_NONE = 15
# Varints here: 6-bit groups, least significant first, bit 6 set on all but the last.
_VARINT_MORE = 0x40


def _entry_code(table: bytes, i: int) -> int:
    return (table[i] >> _CODE_SHIFT) & _CODE_MASK


def _entry_units(table: bytes, i: int) -> int:
    return (table[i] & _LENGTH_MASK) + 1


def _no_location(units: int) -> int:
    """The one byte of a NONE entry covering ``units`` (1-8) code units."""
    return _ENTRY_START | (_NONE << _CODE_SHIFT) | (units - 1)


def _entry_size(table: bytes, i: int) -> int:
    """Bytes of the location entry at ``i``."""
    code = _entry_code(table, i)
    if code == _NONE:
        return 1
    if code in _ONE_LINE:
        return 3
    if code <= _SHORT_LAST:
        return 2
    j = i + 1
    for _ in range(1 if code == _NO_COLUMNS else 4):
        while table[j] & _VARINT_MORE:
            j += 1
        j += 1
    return j - i


def insert_unlocated(table: bytes, at_unit: int, units: int) -> bytes:
    """``table`` with ``units`` (1-8) code units without a location inserted at code unit
    ``at_unit``: such an entry leaves the running line alone, so every later position
    stays. An entry with a location cannot be split (ValueError)."""
    unit = 0
    i = 0
    while i < len(table) and unit < at_unit:
        length = _entry_units(table, i)
        if unit + length > at_unit:
            if _entry_code(table, i) != _NONE:
                raise ValueError("the function's prologue has a location")
            before, after = at_unit - unit, unit + length - at_unit
            middle = bytes([_no_location(before), _no_location(units), _no_location(after)])
            return table[:i] + middle + table[i + 1 :]
        unit += length
        i += _entry_size(table, i)
    return table[:i] + bytes([_no_location(units)]) + table[i:]


# --- the exception table (co_exceptiontable) ----------------------------------------------
# Entries of four varints (start, length, target, depth and lasti), each a run of 6-bit
# groups, most significant first, bit 6 set on all but the last; bit 7 marks an entry's
# first byte.
_EXC_BITS = 6
_EXC_VALUE_MASK = 0x3F
_EXC_MORE = 0x40
_EXC_ENTRY_START = 0x80
_EXC_FIELDS = 4
_EXC_START, _EXC_TARGET = 0, 2


def _exception_varint(value: int) -> list[int]:
    """``value``'s 6-bit groups, most significant first."""
    chunks = [value & _EXC_VALUE_MASK]
    value >>= _EXC_BITS
    while value:
        chunks.append(value & _EXC_VALUE_MASK)
        value >>= _EXC_BITS
    chunks.reverse()
    return chunks


def shift_exception_table(table: bytes, units: int) -> bytes:
    """Every handler's start and target moved ``units`` code units later."""
    out = bytearray()
    i = 0
    while i < len(table):
        fields = []
        for _ in range(_EXC_FIELDS):
            byte = table[i]
            i += 1
            value = byte & _EXC_VALUE_MASK
            while byte & _EXC_MORE:
                byte = table[i]
                i += 1
                value = (value << _EXC_BITS) | (byte & _EXC_VALUE_MASK)
            fields.append(value)
        fields[_EXC_START] += units
        fields[_EXC_TARGET] += units
        for n, value in enumerate(fields):
            chunks = _exception_varint(value)
            for k, chunk in enumerate(chunks):
                byte = chunk | (_EXC_MORE if k < len(chunks) - 1 else 0)
                if n == 0 and k == 0:
                    byte |= _EXC_ENTRY_START
                out.append(byte)
    return bytes(out)
