# exit: 1
"""Tabs, form feeds and backslash continuations."""

def outer(n):
	if n > 0:
		return inner(n)	+ 1
	return	inner(
		n)

def inner(n):
	return 100 // n


total = outer(1) + \
	outer(2) \
		+ outer(3)
print(total)
print(	len('\t'),	'tab\there')
x = {'a':	1}
print(x)
if True:
	print('form feed before tab indent')
y = 1 +	inner(		0)
