"""``import recompyle.autoinstrument`` installs what ``RECOMPYLE_MODULES`` (and the other
``RECOMPYLE_*`` variables, see ``recompyle._startup``) ask for, for programs started without
the ``.pth`` hook, e.g. from an embedding application or a frozen interpreter."""

from recompyle import _startup  # noqa: F401  (installs on import, idempotently)
