"""Issue 14's HTTP defects, each through the real app over a real SQLite file (Litestar's test client).

D6: inputs that answered 500 with a traceback; D8: an empty jwt-secret file; D10: a full disk;
D11: non-ASCII digits, out-of-range integers and non-Unix user names that were stored; D14: the 503
of refresh_metadata missing from the OpenAPI document. Every refusal is a 4xx/503 whose ``detail``
names the field, and nothing is logged with a traceback.
"""

from __future__ import annotations

import logging

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.app import create_app
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common.config import ConfigError
from litestar.testing import AsyncTestClient

DEEP = "[" * 1000 + "]" * 1000  # ~2 KB; msgspec raised RecursionError on it (a 500)
JSON = {"Content-Type": "application/json"}


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]
    assert "Traceback" not in caplog.text


@pytest.fixture
async def admin(fx_client: AsyncTestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}


def job_count(store: SqliteStore) -> int:
    return int(store.writer.execute("SELECT count(*) FROM jobs").fetchone()[0])


# -- D8: an empty jwt-secret file ----------------------------------------------------------------


async def test_D8_empty_jwt_secret_file_is_regenerated(
    fx_store: SqliteStore, fx_settings: CollectorSettings, caplog: pytest.LogCaptureFixture
) -> None:
    secret = fx_settings.state_dir / "jwt-secret"
    secret.write_text("")  # what a crash during the first start left behind (no fsync, no rename)
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        response = await client.post("/api/login", json={"Username": "admin", "Password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
    assert len(secret.read_text().strip()) >= 32
    assert secret.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in secret.parent.iterdir() if p.name.startswith(".jwt-secret")] == []
    # the next start reads the same secret back: sessions survive a restart
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        token = response.json()["token"]
        me = await client.post("/api/auth/ws-ticket", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
    assert "Traceback" not in caplog.text


def test_D8_short_jwt_secret_file_refuses_the_start(
    fx_store: SqliteStore, fx_settings: CollectorSettings
) -> None:
    (fx_settings.state_dir / "jwt-secret").write_text("hunter2\n")
    with pytest.raises(ConfigError, match="jwt-secret"):
        create_app(fx_store, fx_settings)
