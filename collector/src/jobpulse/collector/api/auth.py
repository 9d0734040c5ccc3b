"""Local login/logout (seed 004 /api/login, /api/logout) and WebSocket tickets."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.guards import principal_of
from jobpulse.collector.auth.passwords import verify_password
from jobpulse.collector.auth.roles import Principal
from jobpulse.collector.auth.security import COOKIE_NAME
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common import validate
from litestar import Controller, Request, Response, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import JSONBody
from litestar.security.jwt import JWTCookieAuth, Token

log = logging.getLogger(__name__)

REMEMBER_TTL = 30 * 86400.0


class AuthPayload(msgspec.Struct, forbid_unknown_fields=True):
    """JobMon's auth.AuthPayload."""

    Username: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    Password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    Remember: bool = False


class UserInfo(msgspec.Struct):
    """JobMon's auth.UserInfo."""

    Username: str
    Roles: list[str]


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
    store: SqliteStore = request.app.state.store
    settings: CollectorSettings = request.app.state.settings
    ttl = REMEMBER_TTL if remember else settings.session_ttl
    session_id = await store.write(lambda db: users.create_session(db, username, ttl))
    token = _auth(request).create_token(
        identifier=username,
        token_expiration=timedelta(seconds=ttl),
        token_unique_jwt_id=session_id,
        token_extras={"kind": "session"},
    )
    cookie = Cookie(
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
        store: SqliteStore = request.app.state.store
        user = await store.read(lambda db: users.get_user(db, data.Username))
        if not verify_password(user["password_hash"] if user else None, data.Password) or user is None:
            # A name that is no user is often a password typed into the wrong field: it is never logged
            # (the log reaches admins through WS /api/admin/livelog), only its length is.
            who = (
                validate.safe_for_log(data.Username)
                if user
                else f"an unknown name ({len(data.Username)} chars)"
            )
            log.warning("failed login for %s from %s", who, request.client.host if request.client else "?")
            raise NotAuthorizedException("wrong username or password")
        body, cookie = await start_session(request, data.Username, user["roles"], data.Remember)
        return Response(body, cookies=[cookie])

    @post("/api/logout", operation_id="logout", status_code=200, summary="End the current session")
    async def logout(self, request: Request[Any, Any, Any]) -> Response[None]:
        principal = principal_of(request)
        if principal.session_id:
            store: SqliteStore = request.app.state.store
            session_id = principal.session_id
            await store.write(lambda db: users.end_session(db, session_id))
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
        if not principal.interactive or principal.session_id is None:
            raise PermissionDeniedException(
                "a ws-ticket is made only from a login session (cookie or session token), not from an API key"
            )
        store: SqliteStore = request.app.state.store
        settings: CollectorSettings = request.app.state.settings
        ttl = settings.ws_ticket_ttl
        parent = principal.session_id
        session_id = await store.write(
            lambda db: users.create_session(db, principal.username, ttl, users.WS_TICKET, parent)
        )
        token = _auth(request).create_token(
            identifier=principal.username,
            token_expiration=timedelta(seconds=ttl),
            token_unique_jwt_id=session_id,
            token_extras={"kind": users.WS_TICKET},
        )
        return {"token": token, "expires_in": int(ttl)}


__all__ = ["AuthController", "AuthPayload", "UserInfo", "start_session"]
