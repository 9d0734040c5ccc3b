"""``POST /api/notify/admin``: someone without a role asks the admins for one (JobMon's auth.UserInfo).

No authentication (the asker has no role yet), so it is rate-limited with the
login limit, bounded in size, and a repeated request from the same user updates
the pending one instead of adding rows. Admins see the requests at
``GET /api/admin/notifications`` and in the log.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.roles import unknown_roles
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common import validate
from litestar import Request, post
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.params import JSONBody

log = logging.getLogger(__name__)


class UserInfo(msgspec.Struct):
    """JobMon's auth.UserInfo: who asks, and the roles asked for (empty: "any role that lets me in").

    Other fields are ignored, as JobMon's decoder does: its front end may send the whole claim set."""

    Username: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    Roles: Annotated[list[str], msgspec.Meta(max_length=8)] = msgspec.field(default_factory=list)


@post(
    "/api/notify/admin",
    operation_id="notifyAdmin",
    tags=["administration"],
    status_code=200,
    opt={"exclude_from_auth": True, "strict_rate_limit": True},
    summary="Ask the admins for a role (no authentication; rate-limited)",
)
async def notify_admin(request: Request[Any, Any, Any], data: JSONBody[UserInfo]) -> None:
    validate.unix_name(data.Username, "Username")
    bad = unknown_roles(data.Roles)
    if bad:
        raise ValidationException(
            f"Roles: unknown role(s) {', '.join(repr(r) for r in bad)}; use user, admin, job-control",
            extra=[{"key": "Roles", "message": f"unknown role(s) {bad}"}],
        )
    store: SqliteStore = request.app.state.store
    client = request.client.host if request.client else ""
    try:
        request_id, new = await store.write(
            lambda db: users.add_role_request(db, data.Username, data.Roles, client)
        )
    except users.TooManyRequestsPending as exc:
        log.error("role request from %r refused: %s", data.Username, exc)
        raise ServiceUnavailableException(f"{exc}; try again later") from exc
    log.warning(
        "role request #%d from user %r for roles %s (client %s)%s",
        request_id,
        data.Username,
        data.Roles or ["any"],
        client,
        "" if new else " (repeated)",
    )
