"""A small but real OpenID Connect provider on 127.0.0.1 for tests: discovery, JWKS, authorize, token,
userinfo. It checks what a real provider checks (client credentials, redirect URI, PKCE, one-time codes)
and signs RS256 ID tokens with a key made here; knobs let a test make it misbehave."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "jobpulse"
CLIENT_SECRET = "s3cret-client"


_KEYS: list[RSAKey] = []


def _keys() -> tuple[RSAKey, RSAKey]:
    """The provider's signing key and a stranger's key with the same kid (made once per test run)."""
    if not _KEYS:
        _KEYS.append(RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
        _KEYS.append(RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    return _KEYS[0], _KEYS[1]


class Provider:
    def __init__(self) -> None:
        self.key, self.other_key = _keys()
        self.users: dict[str, dict[str, Any]] = {}
        self.login_as = "alice.oidc"  # who "types their password" at /authorize
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.claim_overrides: dict[str, Any] = {}
        self.omit_from_id_token: set[str] = set()
        self.sign_with_other_key = False
        self.token_requests: list[dict[str, list[str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for serve_forever's next poll (0.5 s by default: half a second a test)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Provider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "userinfo_endpoint": self.url + "/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def _id_token(self, grant: dict[str, Any], access_token: str) -> str:
        user = self.users[grant["user"]]
        now = int(time.time())
        at_hash = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()[:16]).rstrip(b"=")
        claims = {
            "iss": self.url,
            "sub": user["sub"],
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "at_hash": at_hash.decode(),
            **{k: v for k, v in user.items() if k != "sub"},
            **self.claim_overrides,
        }
        for name in self.omit_from_id_token:
            claims.pop(name, None)
        key = self.other_key if self.sign_with_other_key else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, provider.discovery())
                elif url.path == "/jwks":
                    self._json(200, {"keys": [provider.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                        self._json(400, {"error": "invalid_request"})
                        return
                    if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                        self._json(400, {"error": "invalid_request", "error_description": "PKCE required"})
                        return
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {
                        "user": provider.login_as,
                        "nonce": query.get("nonce"),
                        "challenge": query["code_challenge"],
                        "redirect_uri": query["redirect_uri"],
                    }
                    target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                elif url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    user = provider.tokens.get(token)
                    if user is None:
                        self._json(401, {"error": "invalid_token"})
                        return
                    self._json(200, provider.users[user])
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/token":
                    self._json(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                provider.token_requests.append(form)
                expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._json(401, {"error": "invalid_client"})
                    return
                grant = provider.codes.pop(form.get("code", [""])[0], None)  # codes work once
                if grant is None or form.get("redirect_uri", [""])[0] != grant["redirect_uri"]:
                    self._json(400, {"error": "invalid_grant"})
                    return
                verifier = form.get("code_verifier", [""])[0]
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                if digest.decode() != grant["challenge"]:
                    self._json(400, {"error": "invalid_grant", "error_description": "PKCE mismatch"})
                    return
                access = secrets.token_urlsafe(24)
                provider.tokens[access] = grant["user"]
                self._json(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "id_token": provider._id_token(grant, access),
                    },
                )

        return Handler
