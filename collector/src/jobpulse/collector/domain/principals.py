"""The three roles of the JobMon API and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    JOB_CONTROL = "job-control"  # Slurm prolog/epilog scripts: may start and stop jobs, read nothing
    INGEST = (
        "ingest"  # accounting exporters (seed 000's POST /api/data/ingest): may send records, read nothing
    )


ALL_ROLES = frozenset(r.value for r in Role)


def unknown_roles(roles: list[str]) -> list[str]:
    """The names in ``roles`` that are not roles, so a 400 can name them."""
    return sorted({r for r in roles if r not in ALL_ROLES})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (session) or a script (API key)."""

    username: str  # a person, or a key's owner (a person or ``service:<name>``)
    roles: frozenset[str]  # a person's roles; for an API key, only the key's role
    via: str  # "session" (a login), "ws-ticket" (WebSocket routes only), "api-key"
    session_id: str | None = None
    key_id: str | None = None

    @property
    def actor(self) -> str:
        """Who acted, for the audit log: the user name for a session, ``key:<id>`` for an API key (the key's
        owner is listed by GET /api/admin/apikeys), never the owner's name alone."""
        return f"key:{self.key_id}" if self.key_id else self.username

    @property
    def interactive(self) -> bool:
        """A person's login session (local or OIDC): the only thing a ws-ticket can be made from."""
        return self.via == "session" and self.session_id is not None

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has(self, role: str) -> bool:
        """Admins pass every role check, as in JobMon."""
        return self.is_admin or role in self.roles
