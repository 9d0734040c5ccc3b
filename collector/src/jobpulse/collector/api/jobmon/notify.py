"""``POST /api/notify/admin``: someone without a role asks the admins for one (JobMon's auth.UserInfo).

No authentication (the asker has no role yet), so it is rate-limited with the
login limit, bounded in size, and a repeated request from the same user updates
the pending one instead of adding rows. Admins see the requests at
``GET /api/admin/notifications`` and in the log.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.security import accounts_of
from litestar import Request, post
from litestar.params import JSONBody


class UserInfo(msgspec.Struct):
    """JobMon's auth.UserInfo: who asks, and the roles asked for (empty: "any role that lets me in").

    Read as JobMon's Go backend reads it (``body.py``): its front end's "Request Access" button sends
    ``{"username", "roles"}`` in lower case, and other fields are ignored."""

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
    client = request.client.host if request.client else ""
    await accounts_of(request).request_roles(data.Username, data.Roles, client)
