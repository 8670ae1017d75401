# exit: -2
"""Dies with an uncaught KeyboardInterrupt: traceback, then death by SIGINT."""
import atexit

atexit.register(print, "atexit still runs")


def handler():
    raise KeyboardInterrupt


def loop():
    for i in range(3):
        print("tick", i)
        if i == 1:
            handler()


loop()
