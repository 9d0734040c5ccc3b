"""Domain errors: what went wrong in the terms of the product, independent of HTTP.

Services raise these; each API dialect maps them to its protocol in one place (api/errors.py for
HTTP: NotFound 404, Forbidden 403, Unauthorized 401, InvalidInput 400 naming the field, Conflict 409,
Unavailable 503). A service never raises an HTTP exception, so a CLI, a scheduler job or another
dialect can call it and get the same meaning.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose; ``message`` is shown to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does (another user's job)."""


class Forbidden(DomainError):
    """The caller is known but lacks the role or ownership for this."""


class Unauthorized(DomainError):
    """The caller's credentials are missing, wrong or no longer valid."""


class InvalidInput(DomainError):
    """A value the caller sent is not acceptable; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(DomainError):
    """The request contradicts the current state (e.g. removing the last admin)."""


class Unavailable(DomainError):
    """A dependency (Slurm's CLI, the database's disk) cannot serve this now; the call may work later."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after
