# exit: 1
"""Dies with chained exceptions (explicit cause and implicit context)."""


class ConfigError(Exception):
    pass


def parse(text):
    return int(text)


def load(text):
    try:
        return parse(text)
    except ValueError as e:
        raise ConfigError(f"bad config {text!r}") from e


def cleanup(resource):
    return resource.close()


def run():
    try:
        load("x1")
    finally:
        print("cleanup")
    

def outer():
    try:
        run()
    except ConfigError:
        cleanup(None)


print(load("42"))
outer()
