def first(x): return [x][0] + second(x)  # exit: 1


def second(x):
    return 10 // x


print('BOM file', first(5), 'été')
print(first(0))
