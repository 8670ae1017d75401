# exit: 1
"""Dies with an uncaught RecursionError: the traceback collapses repeated lines."""


def ping(n):
    return pong(n + 1)


def pong(n):
    return ping(n + 1)


def start():
    return 1 + ping(0)


print("starting")
start()
