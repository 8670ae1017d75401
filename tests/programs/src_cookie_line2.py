#!/usr/bin/env python3
# vim: set fileencoding=iso-8859-15 :
# exit: 1
"""Cookie on the second line; the euro sign € is one byte here."""


def price(amount):
    return f"{amount:.2f} €"


print(price(3), len("€"), "€".encode("utf-8"))
total = "€" + price(1) + price("not a number") + "€"
