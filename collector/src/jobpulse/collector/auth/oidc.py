"""OpenID Connect login (authorization code flow with PKCE), built on Authlib.

``begin`` makes the provider URL with a fresh state, nonce and PKCE verifier,
kept server side under a random id that travels in the ``oauth_session``
cookie; ``finish`` checks the returned state against it, exchanges the code at
the token endpoint (Authlib's httpx client), and validates the ID token's
signature (provider JWKS), issuer, audience, expiry and nonce (Authlib's
CodeIDToken claims). The caller then maps claims to a user and starts a session.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from jobpulse.collector.settings import OidcSettings
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

PENDING_TTL = 600.0  # a login must come back from the provider within 10 minutes
PENDING_MAX = 10_000  # bounded: unauthenticated clients can start logins
METADATA_TTL = 3600.0


class OidcError(Exception):
    """The login cannot complete; the message is safe to show the user."""


@dataclass
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    created: float
    return_to: str = ""  # where the browser asked to go once logged in (checked same-site by the caller)


@dataclass
class CompletedLogin:
    claims: dict[str, Any]
    return_to: str


class OidcClient:
    def __init__(self, settings: OidcSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._http = http
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, Any] | None = None
        self._pending: OrderedDict[str, PendingLogin] = OrderedDict()

    # -- provider metadata -----------------------------------------------------
    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(url)
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"identity provider unreachable or invalid ({url}): {exc}") from exc
        if not isinstance(data, dict):
            raise OidcError(f"identity provider answered no JSON object at {url}")
        return data

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL:
            data = await self._get_json(self.settings.metadata_url)
            for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not data.get(key):
                    raise OidcError(f"identity provider metadata lacks {key!r}")
            self._metadata, self._metadata_at, self._jwks = data, time.monotonic(), None
        return self._metadata

    async def _key_set(self, force: bool = False) -> KeySet:
        if self._jwks is None or force:
            self._jwks = await self._get_json((await self.metadata())["jwks_uri"])
        return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]

    def _client(self, **kwargs: Any) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret or None,
            scope=self.settings.scopes,
            redirect_uri=self.settings.redirect_url,
            code_challenge_method="S256",
            timeout=10,
            **kwargs,
        )

    # -- the flow --------------------------------------------------------------
    async def begin(self, return_to: str = "") -> tuple[str, str]:
        """Returns (provider URL to redirect to, session id for the ``oauth_session`` cookie).
        ``return_to`` stays here, never at the provider: the callback sends the browser there."""
        metadata = await self.metadata()
        login = PendingLogin(
            generate_token(32), generate_token(32), generate_token(48), time.monotonic(), return_to
        )
        async with self._client() as client:
            url, _state = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=login.state,
                nonce=login.nonce,
                code_verifier=login.code_verifier,
            )
        session_id = secrets.token_urlsafe(32)
        self._expire()
        self._pending[session_id] = login
        while len(self._pending) > PENDING_MAX:
            self._pending.popitem(last=False)
        return str(url), session_id

    def _expire(self) -> None:
        cutoff = time.monotonic() - PENDING_TTL
        while self._pending and next(iter(self._pending.values())).created < cutoff:
            self._pending.popitem(last=False)

    async def finish(self, session_id: str, state: str, code: str) -> CompletedLogin:
        """Validated ID token claims (plus userinfo when the ID token lacks the username claim), and
        where the browser asked to go when the login began."""
        self._expire()
        login = self._pending.pop(session_id, None) if session_id else None
        if login is None:
            raise OidcError("login session unknown or expired; start again at /auth/oauth/login")
        if not secrets.compare_digest(login.state, state):
            raise OidcError("state does not match this browser's login session")
        metadata = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=login.code_verifier
                )
                if "id_token" not in token:
                    raise OidcError("identity provider returned no ID token (is the 'openid' scope set?)")
                claims = await self._validate_id_token(token, login.nonce, metadata)
                if self.settings.username_claim not in claims and metadata.get("userinfo_endpoint"):
                    response = await client.get(metadata["userinfo_endpoint"])
                    response.raise_for_status()
                    info = response.json()
                    if info.get("sub") != claims.get("sub"):
                        raise OidcError("userinfo subject does not match the ID token")
                    claims = {**info, **claims}
        except (httpx.HTTPError, ValueError, AuthlibBaseError) as exc:
            raise OidcError(f"code exchange with the identity provider failed: {exc}") from exc
        return CompletedLogin(claims, login.return_to)

    async def _validate_id_token(
        self, token: dict[str, Any], nonce: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
        try:
            try:
                decoded = jwt.decode(token["id_token"], await self._key_set(), registry=registry)
            except JoseError:  # the provider may have rotated its keys
                decoded = jwt.decode(token["id_token"], await self._key_set(force=True), registry=registry)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "values": [self.settings.client_id]},
                },
                {
                    "nonce": nonce,
                    "client_id": self.settings.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            claims.validate(leeway=60)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"ID token rejected: {exc}") from exc
        return dict(claims)

    # -- mapping claims to a jobpulse user ------------------------------------------------
    def username(self, claims: dict[str, Any]) -> str:
        value = claims.get(self.settings.username_claim)
        if not isinstance(value, str) or not value.strip():
            raise OidcError(f"the identity provider sent no {self.settings.username_claim!r} claim")
        return value.strip()

    def mapped_roles(self, claims: dict[str, Any]) -> list[str]:
        raw = claims.get(self.settings.roles_claim, [])
        groups = [raw] if isinstance(raw, str) else [g for g in raw if isinstance(g, str)]
        return sorted({self.settings.role_map[g] for g in groups if g in self.settings.role_map})
