# exit: 1
"""sys.exit with a message: printed to stderr, exit status 1."""
import sys


def check(config):
    if "required" not in config:
        sys.exit(f"fatal: missing 'required' in {sorted(config)}")


print("checking")
sys.stdout.flush()
check({"other": 1, "more": 2})
print("not reached")
