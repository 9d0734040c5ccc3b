"""Local login/logout (seed 004 /api/login, /api/logout) and WebSocket tickets.

As JobMon's front end calls them: ``POST /api/login`` with ``{"username", "password", "frontendOnly"}``
(lower-case keys, ``frontendOnly`` ignored: bodies are read as Go reads them, see ``body.py``); the
session cookie ``Authorization=Bearer <JWT>`` is written unquoted and, with ``cookie_js_readable`` (the
default), readable by the page's JavaScript, which decodes the JWT's ``Username`` and ``Roles`` claims.
``POST /api/logout`` with ``{"Username", "Roles"}`` ends the caller's own session, whatever the body names.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.guards import principal_of
from jobpulse.collector.auth.roles import Principal
from jobpulse.collector.auth.security import COOKIE_NAME, BearerCookie, accounts_of
from jobpulse.collector.services.accounts import SESSION, WS_TICKET
from jobpulse.collector.settings import CollectorSettings
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody
from litestar.security.jwt import JWTCookieAuth, Token

REMEMBER_TTL = 30 * 86400.0


class AuthPayload(msgspec.Struct):
    """JobMon's auth.AuthPayload (its front end sends ``username``/``password`` and ``frontendOnly``)."""

    Username: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    Password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    Remember: bool = False


class UserInfo(msgspec.Struct):
    """JobMon's auth.UserInfo."""

    Username: str
    Roles: list[str]


class LogoutBody(msgspec.Struct):
    """What JobMon's front end sends on logout: the claims of its cookie. Checked for shape only: logout
    ends the caller's own session, never the one the body names."""

    Username: Annotated[str, msgspec.Meta(max_length=256)] = ""
    Roles: Annotated[list[str], msgspec.Meta(max_length=8)] = msgspec.field(default_factory=list)


class LoginResult(msgspec.Struct):
    token: str
    expires_in: int
    user: UserInfo


def _auth(request: Request[Any, Any, Any]) -> JWTCookieAuth[Principal, Token]:
    auth: JWTCookieAuth[Principal, Token] = request.app.state.auth
    return auth


async def start_session(
    request: Request[Any, Any, Any], username: str, roles: list[str], remember: bool = False
) -> tuple[LoginResult, Cookie]:
    """A server-side session, its JWT and the ``Authorization`` cookie: shared by local and OIDC login."""
    settings: CollectorSettings = request.app.state.settings
    ttl = REMEMBER_TTL if remember else settings.session_ttl
    session_id = await accounts_of(request).start_session(username, ttl)
    token = _auth(request).create_token(
        identifier=username,
        token_expiration=timedelta(seconds=ttl),
        token_unique_jwt_id=session_id,
        token_extras={"kind": SESSION},
        Username=username,  # JobMon's front end reads these two claims (display only)
        Roles=list(roles),
    )
    cookie = BearerCookie(
        key=COOKIE_NAME,
        value=f"Bearer {token}",
        max_age=int(ttl),
        path="/",
        httponly=not settings.cookie_js_readable,
        secure=settings.cookie_secure,
        samesite="lax",
    )
    return LoginResult(token=token, expires_in=int(ttl), user=UserInfo(username, roles)), cookie


class AuthController(Controller):
    tags = ["auth"]

    @post(
        "/api/login",
        operation_id="login",
        opt={"exclude_from_auth": True, "strict_rate_limit": True},
        status_code=200,
        summary="Log in with a local account; sets the session cookie and returns a bearer token",
    )
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[AuthPayload]
    ) -> Response[LoginResult]:
        client = request.client.host if request.client else ""
        user = await accounts_of(request).login(data.Username, data.Password, client)
        body, cookie = await start_session(request, data.Username, user["roles"], data.Remember)
        return Response(body, cookies=[cookie])

    @post("/api/logout", operation_id="logout", status_code=200, summary="End the current session")
    async def logout(
        self, request: Request[Any, Any, Any], data: JSONBody[LogoutBody | None] = None
    ) -> Response[None]:
        await accounts_of(request).end_session(principal_of(request))
        return Response(None, cookies=[Cookie(key=COOKIE_NAME, value="", max_age=0, path="/")])

    @post(
        "/api/auth/ws-ticket",
        operation_id="wsTicket",
        status_code=200,
        summary="A short-lived token for ?token= on WebSocket URLs (browsers cannot set headers there)",
        description=(
            "Only from a login session (cookie or session bearer token), never from an API key. The ticket "
            "works on WebSocket routes only and ends with its session (logout)."
        ),
    )
    async def ws_ticket(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        principal = principal_of(request)
        settings: CollectorSettings = request.app.state.settings
        ttl = settings.ws_ticket_ttl
        session_id = await accounts_of(request).ws_ticket(principal, ttl)
        token = _auth(request).create_token(
            identifier=principal.username,
            token_expiration=timedelta(seconds=ttl),
            token_unique_jwt_id=session_id,
            token_extras={"kind": WS_TICKET},
        )
        return {"token": token, "expires_in": int(ttl)}

    @get(
        "/api/auth/me",
        operation_id="whoAmI",
        summary="Who the caller is: user name, roles (as they are now) and how they authenticated",
        description="The web interface asks it to draw role-aware pages; 401 without credentials.",
    )
    async def me(self, request: Request[Any, Any, Any]) -> Identity:
        principal = principal_of(request)
        return Identity(principal.username, sorted(principal.roles), principal.via)


class Identity(msgspec.Struct):
    """The caller, as GET /api/auth/me answers."""

    Username: str
    Roles: list[str]
    Via: str  # "session" or "api-key"


__all__ = ["AuthController", "AuthPayload", "Identity", "LogoutBody", "UserInfo", "start_session"]
