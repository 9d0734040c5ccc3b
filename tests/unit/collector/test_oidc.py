"""OIDC login against a small real provider on loopback (see oidc_provider.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest
from jobpulse.collector.app import create_app
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider
from storehelp import db_of

BASE = "http://testserver.local"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with Provider() as p:
        p.users["alice.oidc"] = {
            "sub": "u-1001",
            "preferred_username": "alice.oidc",
            "email": "alice@example.org",
            "name": "Alice O.",
            "groups": ["hpc-users", "hpc-admins"],
        }
        p.users["bob.oidc"] = {"sub": "u-1002", "preferred_username": "bob.oidc", "groups": ["students"]}
        yield p


@pytest.fixture
async def oidc_client(
    provider: Provider, fx_store: SqliteStore, fx_settings: CollectorSettings
) -> AsyncIterator[AsyncTestClient]:
    fx_settings.oidc.issuer = provider.url
    fx_settings.oidc.client_id = CLIENT_ID
    fx_settings.oidc.client_secret = CLIENT_SECRET
    fx_settings.oidc.redirect_url = BASE + "/auth/oauth/callback"
    fx_settings.oidc.after_login_url = "/jobs"
    fx_settings.oidc.role_map = {"hpc-admins": "admin", "hpc-users": "user"}
    async with AsyncTestClient(app=create_app(fx_store, fx_settings), base_url=BASE) as client:
        yield client


async def _to_provider_and_back(client: AsyncTestClient, start_at: str = "/auth/oauth/login") -> str:
    """Start login, let the provider authenticate, return the callback path+query it redirected to."""
    start = await client.get(start_at, follow_redirects=False)
    assert start.status_code == 302, start.text
    assert "oauth_session=" in start.headers["set-cookie"] and "HttpOnly" in start.headers["set-cookie"]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    back = urlparse(at_provider.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == BASE + "/auth/oauth/callback"
    return f"{back.path}?{back.query}"


async def test_not_configured_answers_404_with_a_message(fx_client: AsyncTestClient) -> None:
    for path in ("/auth/oauth/login", "/auth/oauth/callback?code=x&state=y"):
        response = await fx_client.get(path, follow_redirects=False)
        assert response.status_code == 404
        assert "OIDC login is not configured" in response.json()["detail"]


async def test_full_login_creates_the_user_and_a_session(
    oidc_client: AsyncTestClient, provider: Provider, fx_store: SqliteStore
) -> None:
    callback = await _to_provider_and_back(oidc_client)
    done = await oidc_client.get(callback, follow_redirects=False)
    assert done.status_code == 302, done.text
    assert done.headers["location"] == "/jobs"
    cookies = done.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("Authorization="))
    assert session.startswith("Authorization=Bearer ey") and "SameSite=lax" in session
    # PKCE was used and the code exchanged at the token endpoint
    assert provider.token_requests[0]["code_verifier"][0]
    user = users.get_user(db_of(fx_store), "alice.oidc")
    assert user is not None
    assert user.roles == ("admin", "user") and user.source == "oidc"
    assert user.email == "alice@example.org" and user.password_hash is None
    # the session cookie works like one from /api/login (admin role mapped from the group)
    assert (await oidc_client.get("/api/jobs")).status_code == 200
    assert (await oidc_client.get("/api/admin/apikeys")).status_code == 200
    assert (await oidc_client.post("/api/logout")).status_code == 200
    assert (await oidc_client.get("/api/jobs")).status_code == 401


async def test_the_browser_returns_to_the_page_that_sent_it_same_site_only(
    oidc_client: AsyncTestClient,
) -> None:
    """The usage dashboard sends a logged-out browser to /saml/login?redirect_to=<its page>; signing in
    there with OIDC must land on that page again, as the form login does. Another site never."""
    page = await oidc_client.get("/saml/login", params={"redirect_to": "/dashboard?cluster=alpha"})
    link = next(part.split('"')[0] for part in page.text.split('href="')[1:] if "/auth/oauth/login" in part)
    link = link.replace("&amp;", "&")
    assert link == "/auth/oauth/login?redirect_to=%2Fdashboard%3Fcluster%3Dalpha"
    done = await oidc_client.get(await _to_provider_and_back(oidc_client, link), follow_redirects=False)
    assert done.status_code == 302 and done.headers["location"] == "/dashboard?cluster=alpha"
    assert (await oidc_client.get("/saml/me")).json()["username"] == "alice.oidc"
    oidc_client.cookies.clear()
    for evil in ("https://evil.example/x", "//evil.example/x", "javascript:alert(1)"):
        start = f"/auth/oauth/login?redirect_to={quote(evil, safe='')}"
        done = await oidc_client.get(await _to_provider_and_back(oidc_client, start), follow_redirects=False)
        assert done.headers["location"] == "/", evil  # the site's own front page instead
        oidc_client.cookies.clear()


async def test_unmapped_users_get_default_roles_and_admin_roles_are_kept(
    oidc_client: AsyncTestClient, provider: Provider, fx_store: SqliteStore
) -> None:
    provider.login_as = "bob.oidc"
    await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    assert users.get_user(db_of(fx_store), "bob.oidc").roles == ("user",)  # type: ignore[union-attr]
    users.set_roles(db_of(fx_store), "bob.oidc", ["user", "job-control"])  # an admin's choice
    oidc_client.cookies.clear()
    await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    assert users.get_user(db_of(fx_store), "bob.oidc").roles == ("job-control", "user")  # type: ignore[union-attr]


async def test_username_from_userinfo_when_not_in_id_token(
    oidc_client: AsyncTestClient, provider: Provider, fx_store: SqliteStore
) -> None:
    provider.omit_from_id_token = {"preferred_username"}
    done = await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    assert done.status_code == 302
    assert users.get_user(db_of(fx_store), "alice.oidc") is not None


async def test_state_mismatch_and_replay_are_refused(oidc_client: AsyncTestClient) -> None:
    callback = await _to_provider_and_back(oidc_client)
    query = parse_qs(urlparse(callback).query)
    forged = await oidc_client.get(
        f"/auth/oauth/callback?code={query['code'][0]}&state=forged", follow_redirects=False
    )
    assert forged.status_code == 401 and "state" in forged.json()["detail"]
    # the login session is used up by the attempt: the genuine callback cannot be replayed either
    replay = await oidc_client.get(callback, follow_redirects=False)
    assert replay.status_code == 401 and "start again" in replay.json()["detail"]
    assert (await oidc_client.get("/api/jobs")).status_code == 401


async def test_callback_without_the_browser_cookie_is_refused(oidc_client: AsyncTestClient) -> None:
    callback = await _to_provider_and_back(oidc_client)
    oidc_client.cookies.clear()
    response = await oidc_client.get(callback, follow_redirects=False)
    assert response.status_code == 401 and "session" in response.json()["detail"]


@pytest.mark.parametrize(
    ("knob", "expected"),
    [
        ("bad_signature", "ID token rejected"),
        ("wrong_audience", "aud"),
        ("wrong_issuer", "iss"),
        ("wrong_nonce", "nonce"),
        ("expired", "exp"),
    ],
)
async def test_invalid_id_tokens_are_refused(
    oidc_client: AsyncTestClient, provider: Provider, fx_store: SqliteStore, knob: str, expected: str
) -> None:
    if knob == "bad_signature":
        provider.sign_with_other_key = True
    elif knob == "wrong_audience":
        provider.claim_overrides = {"aud": "someone-else"}
    elif knob == "wrong_issuer":
        provider.claim_overrides = {"iss": "https://evil.example"}
    elif knob == "wrong_nonce":
        provider.claim_overrides = {"nonce": "replayed"}
    elif knob == "expired":
        provider.claim_overrides = {"exp": 1_000_000_000}
    response = await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    assert response.status_code == 401
    assert expected in response.json()["detail"], response.json()
    assert users.get_user(db_of(fx_store), "alice.oidc") is None
    assert (await oidc_client.get("/api/jobs")).status_code == 401


async def test_provider_errors_are_reported(oidc_client: AsyncTestClient) -> None:
    refused = await oidc_client.get("/auth/oauth/callback?error=access_denied", follow_redirects=False)
    assert refused.status_code == 401 and "access_denied" in refused.json()["detail"]
    missing = await oidc_client.get("/auth/oauth/callback", follow_redirects=False)
    assert missing.status_code == 401 and "state or code" in missing.json()["detail"]


async def test_unreachable_provider_is_a_502(fx_store: SqliteStore, fx_settings: CollectorSettings) -> None:
    fx_settings.oidc.issuer = "http://127.0.0.1:9"  # discard port: nothing listens
    fx_settings.oidc.client_id = CLIENT_ID
    fx_settings.oidc.redirect_url = BASE + "/auth/oauth/callback"
    async with AsyncTestClient(app=create_app(fx_store, fx_settings), base_url=BASE) as client:
        response = await client.get("/auth/oauth/login", follow_redirects=False)
        assert response.status_code == 502 and "identity provider" in response.json()["detail"]


async def test_token_endpoint_refusal_is_a_401_not_a_500(
    oidc_client: AsyncTestClient, fx_settings: CollectorSettings
) -> None:
    fx_settings.oidc.client_secret = "wrong-secret"  # the provider refuses the code exchange
    response = await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    assert response.status_code == 401
    assert "invalid_client" in response.json()["detail"]


async def test_oidc_session_gets_ws_tickets_and_service_names_cannot_log_in(
    oidc_client: AsyncTestClient, provider: Provider, fx_store: SqliteStore
) -> None:
    """Issue 14: an OIDC session is interactive (it may make a ws-ticket, which works on WebSockets only);
    a provider user named like a service principal cannot become a login."""
    await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    ticket = await oidc_client.post("/api/auth/ws-ticket")
    assert ticket.status_code == 200, ticket.text
    oidc_client.cookies.clear()
    as_bearer = await oidc_client.get(
        "/api/jobs", headers={"Authorization": f"Bearer {ticket.json()['token']}"}
    )
    assert as_bearer.status_code == 401
    provider.users["service:slurm-hooks"] = {"sub": "u-9", "preferred_username": "service:slurm-hooks"}
    provider.login_as = "service:slurm-hooks"
    refused = await oidc_client.get(await _to_provider_and_back(oidc_client), follow_redirects=False)
    assert refused.status_code == 401 and "reserves" in refused.json()["detail"]
    assert users.get_user(db_of(fx_store), "service:slurm-hooks") is None
