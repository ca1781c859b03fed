"""The root of every exception zcall defines.

`except ZcallError` catches what the phone means to report (bad input, a refused command, a broken config)
and never a bug. Each class keeps the builtin base its callers rely on (ValueError, LookupError, ...).
"""


class ZcallError(Exception):
    """Base class of zcall's own exceptions."""
