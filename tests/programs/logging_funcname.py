"""logging records carry the caller's funcName, lineno, filename and module."""
import logging
import sys

logging.basicConfig(
    stream=sys.stdout,
    level=logging.DEBUG,
    format="%(levelname)s %(filename)s:%(lineno)d %(funcName)s %(module)s %(name)s | %(message)s",
)
log = logging.getLogger("diff")


def helper():
    log.info("from helper")
    log.debug("args %s %d", "x", 3)


def wrapper():
    log.warning("wrapper warns", stacklevel=2)


class Service:
    def run(self):
        log.info("in method")
        helper()
        wrapper()
        return [log.info("in comprehension %d", i) for i in range(2)]

    @property
    def prop(self):
        log.error("in property")
        return 1

    @classmethod
    def build(cls):
        logging.info("root logger in classmethod")
        return cls()


log.info("module level")
helper()
wrapper()
Service.build().run()
Service().prop  # noqa: B018
(lambda: log.info("in lambda"))()
log.info(
    "multi-line call %s",
    "arg",
)


def failing():
    return {}["missing"]


try:
    failing()
except KeyError:
    log.exception("caught with traceback")

errlog = logging.getLogger("err")
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("[%(funcName)s:%(lineno)d] %(message)s"))
errlog.addHandler(handler)
errlog.propagate = False
errlog.error("to stderr")

