"""Cross-cutting HTTP behaviour: rate limits, gzip, CORS, body size, uniform errors, OpenAPI, metrics."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.app import create_app
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from storehelp import db_of


@pytest.fixture
async def tight_client(
    fx_store: SqliteStore, fx_settings: CollectorSettings
) -> AsyncIterator[AsyncTestClient]:
    fx_settings.http.rate_limit_per_minute = 5
    fx_settings.http.login_rate_limit_per_minute = 3
    fx_settings.http.cors_origins = ["https://jobs.example.org"]
    fx_settings.http.max_body_bytes = 2048
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        yield client


async def test_rate_limit_answers_429_with_retry_after(tight_client: AsyncTestClient) -> None:
    statuses = [(await tight_client.get("/api/ping")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = await tight_client.get("/api/ping")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Retry-After" in limited.json()["detail"]


async def test_login_has_a_stricter_limit(tight_client: AsyncTestClient) -> None:
    bad = {"Username": "alice", "Password": "guess"}
    statuses = [(await tight_client.post("/api/login", json=bad)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # the right password does not help once the limit is reached
    good = await tight_client.post("/api/login", json={"Username": "alice", "Password": "alice-password"})
    assert good.status_code == 429 and int(good.headers["Retry-After"]) >= 1


async def test_limits_can_be_turned_off(fx_store: SqliteStore, fx_settings: CollectorSettings) -> None:
    fx_settings.http.rate_limit_per_minute = 0
    fx_settings.http.login_rate_limit_per_minute = 0
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        for i in range(25):  # notify/admin shares the strict limit with login (and is cheaper to call)
            response = await client.post("/api/notify/admin", json={"Username": f"u{i}", "Roles": []})
            assert response.status_code == 200
        for _ in range(25):
            assert (await client.get("/api/ping")).status_code == 200


async def test_large_responses_are_gzipped_small_ones_not(fx_client: AsyncTestClient) -> None:
    big = await fx_client.get("/api/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert big.status_code == 200
    assert big.headers["content-encoding"] == "gzip"
    assert len(big.content) > 1024 and big.json()["openapi"].startswith("3.")  # httpx decoded it
    small = await fx_client.get("/api/ping", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    plain = await fx_client.get("/api/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(gzip.compress(plain.content)) < len(plain.content)


async def test_cors_preflight_allowed_only_for_configured_origins(tight_client: AsyncTestClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    allowed = await tight_client.options(
        "/api/jobs", headers={"Origin": "https://jobs.example.org", **preflight}
    )
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == "https://jobs.example.org"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    refused = await tight_client.options("/api/jobs", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code >= 400
    assert "access-control-allow-origin" not in refused.headers
    simple = await tight_client.get("/api/ping", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_is_off_without_configured_origins(fx_client: AsyncTestClient) -> None:
    response = await fx_client.get("/api/ping", headers={"Origin": "https://jobs.example.org"})
    assert "access-control-allow-origin" not in response.headers


async def test_oversize_body_is_413_with_detail(tight_client: AsyncTestClient) -> None:
    body = {"Username": "alice", "Password": "x" * 5000}
    response = await tight_client.post("/api/login", json=body)
    assert response.status_code == 413
    assert response.json()["detail"]


async def test_every_error_has_a_detail(fx_client: AsyncTestClient) -> None:
    not_found = await fx_client.get("/api/no-such-route")
    assert not_found.status_code == 404 and not_found.json()["detail"]
    wrong_method = await fx_client.delete("/api/ping")
    assert wrong_method.status_code == 405 and wrong_method.json()["detail"]
    unauthenticated = await fx_client.get("/api/admin/audit")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["detail"]
    bad_token = await fx_client.get("/api/jobs", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad_token.status_code == 401 and bad_token.json()["detail"]
    validation = await fx_client.post("/api/login", json={"Username": "alice", "Password": 12})
    assert validation.status_code == 400
    assert "Password" in validation.json()["detail"] and validation.json()["errors"]
    for response in (not_found, wrong_method, unauthenticated, bad_token, validation):
        assert "Traceback" not in response.text


async def test_openapi_served_at_docs_and_api(fx_client: AsyncTestClient) -> None:
    docs = await fx_client.get("/docs/openapi.json")
    api = await fx_client.get("/api/openapi.json")
    assert docs.status_code == api.status_code == 200
    assert docs.json() == api.json()
    schema = api.json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "name": "X-API-Key",
        "in": "header",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["BearerToken"]["scheme"] == "Bearer"
    for path in (
        "/api/generateAPIKey",
        "/api/admin/apikeys",
        "/api/config/users/{user}",
        "/api/notify/admin",
        "/api/admin/audit",
        "/auth/oauth/login",
        "/auth/oauth/callback",
    ):
        assert path in schema["paths"], path
    roles = schema["paths"]["/api/config/users/{user}"]["patch"]["requestBody"]["content"]["application/json"]
    assert roles["schema"]
    # the uniform error body and the cross-cutting statuses are documented on every operation
    audit = schema["paths"]["/api/admin/audit"]["get"]
    for code in ("401", "403", "429"):
        assert audit["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
    assert "Retry-After" in audit["responses"]["429"]["headers"]
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["detail"]
    # routes that need no credentials say so; the others inherit the global requirement
    assert schema["paths"]["/api/notify/admin"]["post"]["security"] == [{}]
    assert "security" not in audit
    assert {"ApiKey": []} in schema["security"] and {"BearerToken": []} in schema["security"]
    assert (await fx_client.get("/docs")).status_code == 200


async def test_prometheus_metrics(fx_client: AsyncTestClient, fx_store: SqliteStore) -> None:
    now = time.time()
    db_of(fx_store).execute(
        "INSERT INTO nodes (name, first_seen, last_seen) VALUES ('n1', ?, ?), ('n2', ?, ?)",
        (now, now, now - 3600, now - 3600),
    )
    await fx_client.get("/api/ping")
    await fx_client.get("/api/ping")
    await login(fx_client, "admin", ADMIN_PASSWORD)
    response = await fx_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'jobpulse_http_requests_total{method="GET",route="/api/ping",status="200"} 2.0' in text
    assert 'jobpulse_http_requests_total{method="POST",route="/api/login",status="200"} 1.0' in text
    assert "jobpulse_nodes 2.0" in text and "jobpulse_nodes_active 1.0" in text
