"""Litestar authentication: JWT in the Authorization header or cookie, API keys, WebSocket tickets.

Built on ``litestar.security.jwt.JWTCookieAuth``. Its middleware is extended
so that the same request can instead carry an API key (``X-API-Key: jp_...``,
``Authorization: Bearer jp_...``, or the cookie ``Authorization=Bearer jp_...``
as JobMon's Slurm script sends it), and a WebSocket can authenticate with a
short-lived ``?token=`` ticket, since browsers cannot set headers on a
WebSocket. Every JWT names a server-side session (``jti``), so logout and
expiry are enforced by the collector, not only by the token's ``exp``.

A session JWT also carries JobMon's top-level claims ``Username`` and ``Roles`` (the roles at login), which
JobMon's front end reads from the cookie to draw its pages. They are for display only: who a request is
and what it may do always come from the server-side session and the user's current roles.

Credentials by kind (issue 14): a session JWT comes from a login (local or OIDC) and works everywhere;
a ws-ticket is made from a session, works on WebSocket routes only (and is the only token accepted in
``?token=``), and dies with its session; an API key acts with its own role only, and only while its
owner holds that role. The rules are the accounts service's (services/accounts.py); this module only
reads the credentials off the request.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from jobpulse.collector.auth.roles import Principal
from jobpulse.collector.domain.errors import Unauthorized
from jobpulse.collector.services import accounts
from jobpulse.collector.services.accounts import AccountService
from jobpulse.collector.settings import CollectorSettings
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AuthenticationResult
from litestar.security.jwt import JWTCookieAuth, JWTCookieAuthenticationMiddleware, Token

COOKIE_NAME = "Authorization"  # JobMon's front end reads and sends this cookie

# A cookie value as browsers keep it: visible ASCII but '"', ',', ';' and '\\', with single spaces inside.
_COOKIE_WORD = r"[!#-+\--:<-\[\]-~]+"
_COOKIE_VALUE = re.compile(rf"(?:{_COOKIE_WORD}(?: {_COOKIE_WORD})*)?")


@dataclass
class SessionToken(Token):
    """A session JWT: Litestar's claims plus JobMon's top-level ``Username`` and ``Roles``.

    JobMon's front end decodes the cookie's JWT (without checking it) and reads these two claims to
    draw its pages and menus; jobpulse never reads them back for authorization (``retrieve_principal``
    asks the server-side session, and roles are read at every request)."""

    Username: str | None = None
    Roles: list[str] | None = None


@dataclass
class BearerCookie(Cookie):
    """The ``Authorization`` cookie, its value ``Bearer <JWT>`` written unquoted.

    Python's ``SimpleCookie`` (so Litestar's ``Cookie``) quotes a value holding a space
    (``Authorization="Bearer eyJ..."``); browsers keep the quotes, and JobMon's front end, reading
    ``document.cookie``, needs ``Bearer eyJ...`` as its own backend sends it. Browsers accept a space
    inside a cookie value; the value may hold nothing else that would need quoting."""

    @property
    def simple_cookie(self) -> SimpleCookie:
        cookie = super().simple_cookie
        value = self.value or ""
        if not _COOKIE_VALUE.fullmatch(value):
            raise ValueError(f"cookie {self.key}: the value would need quoting")
        cookie[self.key].set(self.key, value, value)
        return cookie


def accounts_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccountService:
    """The accounts service of the app (``app.state.accounts``)."""
    service: AccountService = connection.app.state.accounts
    return service


async def retrieve_principal(
    token: Token, connection: ASGIConnection[Any, Any, Any, Any]
) -> Principal | None:
    """The session's user, or None (401) when the session is over or the token is used where its kind
    does not work: a ws-ticket outside a WebSocket route."""
    if not token.jti:
        return None
    return await accounts_of(connection).session_principal(
        str(token.jti),
        token.sub,
        str(token.extras.get("kind", accounts.SESSION)),
        websocket=connection.scope["type"] == ScopeType.WEBSOCKET,
    )


class JobpulseAuthMiddleware(JWTCookieAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        headers = connection.headers
        api_key = headers.get("x-api-key", "")
        bearer = headers.get("authorization", "").partition(" ")[-1].strip()
        if not api_key and accounts.looks_like_api_key(bearer):
            api_key = bearer
        if not api_key and not bearer:
            # JobMon's Slurm script: curl --cookie "Authorization=Bearer <key>" (a session JWT in the
            # cookie goes on to Litestar's check below, as the header's does)
            cookie = connection.cookies.get(COOKIE_NAME, "").split(" ")[-1]
            if accounts.looks_like_api_key(cookie):
                api_key = cookie
        if api_key:
            return await self._authenticate_api_key(api_key, connection)
        if connection.scope["type"] == ScopeType.WEBSOCKET and connection.query_params.get("token"):
            # only a ws-ticket belongs in a URL (URLs end up in logs); sessions use the cookie or header
            result = await self.authenticate_token(connection.query_params["token"], connection)
            if not isinstance(result.user, Principal) or result.user.via != accounts.WS_TICKET:
                raise NotAuthorizedException("?token= takes a ticket from POST /api/auth/ws-ticket")
            return result
        return await super().authenticate_request(connection)

    @staticmethod
    async def _authenticate_api_key(
        presented: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        try:
            principal, record = await accounts_of(connection).key_principal(presented)
        except Unauthorized as exc:  # the middleware runs before the app's exception handlers
            raise NotAuthorizedException(exc.message) from exc
        return AuthenticationResult(user=principal, auth=record)


def jwt_secret(settings: CollectorSettings) -> str:
    """The configured secret, or one generated once and kept in the state directory (mode 0600).

    The file is written atomically (temp file, fsync, rename): a crash leaves no file or a whole one.
    An empty file is what the older non-atomic write left after a crash during the first start (no
    token was ever signed with it): it is regenerated. A non-empty one shorter than 32 characters is
    not ours: the start is refused, naming the file, rather than signing tokens with a weak key.
    """
    import logging

    from jobpulse.common import statefile
    from jobpulse.common.config import ConfigError

    if settings.jwt_secret:
        return settings.jwt_secret
    path: Path = settings.state_dir / "jwt-secret"
    if path.exists():
        raw = path.read_bytes().strip()
        if len(raw) >= 32 and raw.isascii():
            return raw.decode()
        if raw:
            raise ConfigError(
                f"jwt secret file {path} holds {len(raw)} bytes, not a secret of at least 32 ASCII "
                "characters: remove it to have a new one generated (logs everyone out), or set jwt_secret"
            )
        logging.getLogger(__name__).warning(
            "jwt secret file %s is empty (a crash during the first start?): generating a new one", path
        )
    statefile.private_dir(path.parent)
    secret = secrets.token_urlsafe(48)
    statefile.write_atomic(path, secret)
    return secret


def build_auth(settings: CollectorSettings) -> JWTCookieAuth[Principal, Token]:
    return JWTCookieAuth[Principal, Token](
        retrieve_user_handler=retrieve_principal,
        token_secret=jwt_secret(settings),
        key=COOKIE_NAME,
        token_cls=SessionToken,
        default_token_expiration=timedelta(seconds=settings.session_ttl),
        authentication_middleware_class=JobpulseAuthMiddleware,
        exclude=["^/docs", "^/favicon"],
        secure=settings.cookie_secure,
        samesite="lax",
        description="Session JWT (Authorization header or cookie) or API key (X-API-Key / Bearer jp_...)",
    )
