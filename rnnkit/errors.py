"""Errors raised for bad user input.

``UserError`` subclasses ``ValueError`` so library callers can catch the usual
type; the CLI prints its message on one line and exits with code 2.
"""


class UserError(ValueError):
    """Bad input from a user: a message that names the problem and what was received."""


class ArtifactError(UserError):
    """A missing, corrupt or incompatible export artifact."""
