"""``python -m recompyle``: see ``recompyle.cli``."""

from recompyle.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
