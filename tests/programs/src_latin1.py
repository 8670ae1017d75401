# -*- coding: latin-1 -*-
# exit: 1
"""Source encoded in latin-1 (café, señor, Müller, ©)."""


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
