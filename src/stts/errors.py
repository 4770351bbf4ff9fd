"""Errors a user can fix. The CLI prints them as one line and exits non-zero, without a traceback."""


class SttsError(Exception):
    """A bad input, file or option; the message names it and says what to do."""
