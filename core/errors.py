"""The one error type users see: a one-line message naming the problem and the fix."""


class PolyFactError(Exception):
    """A user-facing error. The CLI prints ``str(err)`` on one line and exits with status 2."""
