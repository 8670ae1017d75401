"""Writes the src_*.py programs whose exact bytes matter (encodings, line endings, BOM, tabs,
form feeds, missing final newline). Run it from anywhere: python tests/programs/_make_special_sources.py

The files are committed as written; tests/programs/.gitattributes keeps git from normalising
them, and test_differential.py checks that the interesting bytes are still there."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, data: bytes):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


# latin-1 coding cookie: non-ASCII in strings, comments and identifiers; the failing call sits
# after non-ASCII text on its line so the caret columns depend on decoding correctly.
write(
    "src_latin1.py",
    """# -*- coding: latin-1 -*-
# exit: 1
\"\"\"Source encoded in latin-1 (café, señor, Müller, ©).\"\"\"


def größe(wert):
    return len(wert) * 2


def durch(a, b):
    return a // b


café = "crème brûlée"
print(café, größe(café), "©", ascii(café))
print("señor" + str(größe("ñ")), "Müller".upper())
résumé = {"naïve": größe("à")}
print(résumé)
ergebnis = "é" * 2 + str(durch(größe("ü"), größe("")))
""".encode("latin-1"),
)

# A shebang, then a PEP 263 cookie on line 2 for a codec that is not latin-1 (0xA4 is the euro
# sign in ISO-8859-15).
write(
    "src_cookie_line2.py",
    """#!/usr/bin/env python3
# vim: set fileencoding=iso-8859-15 :
# exit: 1
\"\"\"Cookie on the second line; the euro sign € is one byte here.\"\"\"


def price(amount):
    return f"{amount:.2f} €"


print(price(3), len("€"), "€".encode("utf-8"))
total = "€" + price(1) + price("not a number") + "€"
""".encode("iso-8859-15"),
)

# CRLF line endings throughout, including inside a triple-quoted string, a multi-line call and
# a backslash continuation; dies in a multi-line statement.
write(
    "src_crlf.py",
    """# exit: 1\r
\"\"\"CRLF line endings.\"\"\"\r
\r
\r
def join(*parts, sep=" "):\r
    return sep.join(parts)\r
\r
\r
def fail(x):\r
    raise ValueError(f"bad {x!r}")\r
\r
\r
text = \"\"\"line one\r
line two\"\"\"\r
print(repr(text))\r
print(join("a",\r
           "b",\r
           sep="-"))\r
value = 1 + \\\r
    len(join("c", "d"))\r
print(value)\r
result = join(\r
    "x",\r
    fail(\r
        "crlf"\r
    ),\r
)\r
""".encode("utf-8"),
)

# Lines ending in CR alone, CRLF and LF, mixed.
write(
    "src_mixed_newlines.py",
    b"# exit: 1\n"
    b'"""Mixed line endings: LF, CRLF and lone CR."""\r\n'
    b"def twice(x):\r"
    b"    return x * 2\r\n"
    b"\n"
    b"print(twice(1),\r"
    b"      twice(2))\r\n"
    b"values = [twice(i) for i in range(3)]\r"
    b"print(values)\n"
    b"print(twice(None) + 1)\r\n",
)

# A UTF-8 byte-order mark: it shifts byte offsets on line 1 only, where a failing call sits.
write(
    "src_bom.py",
    "\ufeffdef first(x): return [x][0] + second(x)  # exit: 1\n"
    "\n"
    "\n"
    "def second(x):\n"
    "    return 10 // x\n"
    "\n"
    "\n"
    "print('BOM file', first(5), '\u00e9t\u00e9')\n"
    "print(first(0))\n".encode("utf-8"),
)

# Tab indentation, tabs inside lines, form feeds between and at the start of lines, backslash
# continuations; dies on a line with tabs before the failing call.
write(
    "src_tabs_formfeed.py",
    b"# exit: 1\n"
    b'"""Tabs, form feeds and backslash continuations."""\n'
    b"\x0c\n"
    b"def outer(n):\n"
    b"\tif n > 0:\n"
    b"\t\treturn inner(n)\t+ 1\n"
    b"\treturn\tinner(\n"
    b"\t\tn)\n"
    b"\x0c\n"
    b"\x0cdef inner(n):\n"
    b"\treturn 100 // n\n"
    b"\n"
    b"\n"
    b"total = outer(1) + \\\n"
    b"\touter(2) \\\n"
    b"\t\t+ outer(3)\n"
    b"print(total)\n"
    b"print(\tlen('\\t'),\t'tab\\there')\n"
    b"x = {'a':\t1}\n"
    b"\x0cprint(x)\n"
    b"if True:\n"
    b"\x0c\tprint('form feed before tab indent')\n"
    b"y = 1 +\tinner(\t\t0)\n",
)

# No final newline; the last line holds a call and a comment.
write(
    "src_no_newline.py",
    b'"""No newline at the end of the file."""\n'
    b"\n"
    b"\n"
    b"def last(x):\n"
    b"    return x + 1\n"
    b"\n"
    b"\n"
    b"print(last(1))\n"
    b"print(last(last(2)))  # trailing comment without newline",
)

# No final newline and the last line dies.
write(
    "src_no_newline_error.py",
    b"# exit: 1\n"
    b'"""No newline at the end, and the last line raises."""\n'
    b"\n"
    b"\n"
    b"def last(x):\n"
    b"    return x + 1\n"
    b"\n"
    b"\n"
    b"print(last(1))\n"
    b"print(last(None))",
)

# Unicode identifiers (incl. NFKC normalisation of the \ufb01 ligature), 2-, 3- and 4-byte
# UTF-8 in strings; the failing call comes after wide characters on its line.
write(
    "src_unicode_idents.py",
    """# exit: 1
\"\"\"Unicode identifiers and strings.\"\"\"


def größe(länge, breite=1):
    return länge * breite


def 計算(値):
    return 値 + 1


class Ünïcode:
    def méthode(self, ñ):
        return f"{ñ}→{計算(ñ)}"


π = 3.14159
ﬁle = "ligature normalised to file"
print(größe(2, breite=3), 計算(41), Ünïcode().méthode(1), round(π * größe(2), 3))
print(file, "ﬁle" in globals(), "file" in globals())
print("emoji 🐍 and 中文", len("🐍"), "🐍".encode())
print([計算(i) for i in range(3)], {"ключ": größe(4)})
résultat = "日本語" + str(計算(größe(2))) + "🐍" + 計算("文字")
""".encode("utf-8"),
)

# Inconsistent tabs and spaces: the tokenizer's TabError, exactly as CPython words it.
write(
    "src_tab_error.py",
    b"# exit: 1\n"
    b"# quiet: a file that does not compile prints nothing and makes no calls\n"
    b'"""Mixes tabs and spaces inconsistently: TabError."""\n'
    b"print('never printed')\n"
    b"\n"
    b"\n"
    b"def f(x):\n"
    b"        if x:\n"
    b"\t    return f(x - 1)\n"
    b"        return 0\n",
)
