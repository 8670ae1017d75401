# exit: 1
"""Unicode identifiers and strings."""


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
