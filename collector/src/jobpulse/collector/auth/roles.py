"""The three roles of the JobMon API and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    JOB_CONTROL = "job-control"  # Slurm prolog/epilog scripts: may start and stop jobs, read nothing


ALL_ROLES = frozenset(r.value for r in Role)


def unknown_roles(roles: list[str]) -> list[str]:
    """The names in ``roles`` that are not roles, so a 400 can name them."""
    return sorted({r for r in roles if r not in ALL_ROLES})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (session) or a script (API key)."""

    username: str
    roles: frozenset[str]
    via: str  # "session", "api-key", "ws-ticket"
    session_id: str | None = None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has(self, role: str) -> bool:
        """Admins pass every role check, as in JobMon."""
        return self.is_admin or role in self.roles
