"""``GET /auth/oauth/login`` and ``GET /auth/oauth/callback`` (seed 004): OIDC login when configured.

Without an ``[oidc]`` configuration both answer 404 with a message. After a
successful callback the user exists locally (created on first login, with the
roles the provider's groups map to, else ``default_roles``; roles an admin gave
are kept) and gets a session exactly as ``/api/login`` makes one, then goes back to
the page that began the login (``?redirect_to=``, same site only) or ``after_login_url``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from jobpulse.collector.api.common import same_site_target
from jobpulse.collector.api.jobmon.auth import start_session
from jobpulse.collector.auth.oidc import OidcClient, OidcError
from jobpulse.collector.auth.security import accounts_of
from jobpulse.collector.settings import CollectorSettings
from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.params import QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_302_FOUND, HTTP_502_BAD_GATEWAY

log = logging.getLogger(__name__)

SESSION_COOKIE = "oauth_session"


def _client(request: Request[Any, Any, Any]) -> OidcClient:
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        raise NotFoundException("OIDC login is not configured on this collector (see [oidc] in the README)")
    return client


class OidcController(Controller):
    tags = ["auth"]
    opt = {"exclude_from_auth": True, "strict_rate_limit": True}

    @get(
        "/auth/oauth/login",
        operation_id="oauthLogin",
        summary='Start OIDC login: sets the "oauth_session" cookie and redirects to the identity provider',
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        redirect_to: Annotated[str | None, QueryParameter(max_length=2048)] = None,
    ) -> Redirect:
        client = _client(request)
        settings: CollectorSettings = request.app.state.settings
        # A page that sent the browser here (the web interface, the usage dashboard's /saml/login) gets
        # it back after the login; only a target on this site, so the login cannot be an open redirect.
        return_to = same_site_target(request, redirect_to) if redirect_to else ""
        try:
            url, session_id = await client.begin(return_to)
        except OidcError as exc:
            log.error("OIDC login cannot start: %s", exc)
            raise _unavailable(str(exc)) from exc
        cookie = Cookie(
            key=SESSION_COOKIE,
            value=session_id,
            max_age=600,
            path="/auth/oauth",
            httponly=True,
            secure=settings.cookie_secure,
            samesite="lax",  # sent on the provider's top-level redirect back to us
        )
        return Redirect(url, status_code=HTTP_302_FOUND, cookies=[cookie])

    @get(
        "/auth/oauth/callback",
        operation_id="oauthCallback",
        summary="OIDC callback (called by the identity provider's redirect): sets the session cookie",
    )
    async def callback(
        self,
        request: Request[Any, Any, Any],
        oauth_state: Annotated[str, QueryParameter(name="state", max_length=512)] = "",
        code: Annotated[str, QueryParameter(max_length=4096)] = "",
        error: Annotated[str, QueryParameter(max_length=256)] = "",
    ) -> Response[Any]:
        client = _client(request)
        settings: CollectorSettings = request.app.state.settings
        if error:
            raise NotAuthorizedException(f"identity provider refused the login: {error}")
        if not oauth_state or not code:
            raise NotAuthorizedException("callback lacks state or code; start again at /auth/oauth/login")
        try:
            login = await client.finish(request.cookies.get(SESSION_COOKIE, ""), oauth_state, code)
            claims = login.claims
            username = client.username(claims)
            if ":" in username:  # reserved: service:<name> owns API keys and must not be a login
                raise OidcError(f"user name claim {username[:80]!r} contains ':', which jobpulse reserves")
        except OidcError as exc:
            log.warning("OIDC login failed: %s", exc)
            raise NotAuthorizedException(f"OIDC login failed: {exc}") from exc
        user = await accounts_of(request).external_login(
            username,
            "oidc",
            client.mapped_roles(claims),
            settings.oidc.default_roles,
            str(claims.get("email") or ""),
            str(claims.get("name") or ""),
        )
        _, session_cookie = await start_session(request, username, list(user.roles))
        log.info("OIDC login of %r with roles %s", username, list(user.roles))
        clear = Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/auth/oauth")
        return Redirect(
            login.return_to or settings.oidc.after_login_url,
            status_code=HTTP_302_FOUND,
            cookies=[session_cookie, clear],
        )


def _unavailable(message: str) -> HTTPException:
    return HTTPException(detail=f"identity provider unavailable: {message}", status_code=HTTP_502_BAD_GATEWAY)
