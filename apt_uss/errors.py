"""User-facing errors: one line, naming the bad value and what is allowed."""


class AptUssError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The CLI and the local pipeline runner print its message as a single line and
    exit non-zero, without a traceback.
    """
