# exit: 1
"""Mixed line endings: LF, CRLF and lone CR."""
def twice(x):    return x * 2

print(twice(1),      twice(2))
values = [twice(i) for i in range(3)]print(values)
print(twice(None) + 1)
