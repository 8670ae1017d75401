"""Helper module that warns on behalf of its caller."""
import warnings


def old_api(x):
    warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=2)
    return x


def hidden(x):
    # stacklevel=1: attributed to this module, not __main__: ignored by the default filters.
    warnings.warn("hidden deprecation", DeprecationWarning, stacklevel=1)
    return x


def pending(x):
    warnings.warn("pending", PendingDeprecationWarning, stacklevel=2)
    return x
