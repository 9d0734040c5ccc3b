"""Issue 14's HTTP defects, each through the real app over a real SQLite file (Litestar's test client).

D6: inputs that answered 500 with a traceback; D8: an empty jwt-secret file; D10: a full disk;
D11: non-ASCII digits, out-of-range integers and non-Unix user names that were stored; D14: the 503
of refresh_metadata missing from the OpenAPI document. Every refusal is a 4xx/503 whose ``detail``
names the field, and nothing is logged with a traceback.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common.config import ConfigError
from litestar.testing import AsyncTestClient
from storehelp import db_of
from support import small_tmpfs

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
    return int(db_of(store).execute("SELECT count(*) FROM jobs").fetchone()[0])


# -- D6: 500s with a traceback -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "auth"),
    [
        ("post", "/api/login", DEEP, "body", False),
        ("post", "/api/login", '{"Username": ' + DEEP + ', "Password": "x"}', "body", False),
        ("post", "/api/notify/admin", '{"Username": "eve", "Roles": ' + DEEP + "}", "body", False),
        ("post", "/api/tags/add_tag?job=1", '{"Name": ' + DEEP + "}", "body", True),
        ("patch", "/api/config/update", '{"Metrics": ' + DEEP + "}", "body", True),
        ("put", "/api/job_start", '{"Id": 5, "Data": {"a": ' + DEEP + "}}", "body", True),
        ("post", "/api/login", b'{"Username": "\xff\xfe", "Password": "x"}', "body", False),
        ("patch", "/api/job_stop/\u00b2", "{}", "id", True),
        ("put", "/api/job_start", '{"Id": 5, "UserId": 18446744073709551616}', "UserId", True),
        ("patch", "/api/job_stop/5", '{"ExitCode": 1180591620717411303424}', "ExitCode", True),
    ],
    ids=[
        "D6-deep-login",
        "D6-deep-login-field",
        "D6-deep-notify-admin",
        "D6-deep-add-tag",
        "D6-deep-config-update",
        "D6-deep-job-start-Data",
        "D6-invalid-utf8-login",
        "D6-superscript-two-job-stop",
        "D6-UserId-2**64",
        "D6-ExitCode-2**70",
    ],
)
async def test_D6_bad_input_is_a_4xx_naming_the_field(
    fx_client: AsyncTestClient,
    fx_store: SqliteStore,
    admin: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: str | bytes,
    field: str,
    auth: bool,
) -> None:
    caplog.clear()
    headers = {**JSON, **(admin if auth else {})}
    response = await fx_client.request(method.upper(), path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:") or f" {field}:" in detail, detail
    assert job_count(fx_store) == 0
    no_traceback(caplog)


async def test_D6_deep_json_on_login_needs_no_login_and_bodies_within_bounds_still_work(
    fx_client: AsyncTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    deep = await fx_client.post("/api/login", content=DEEP, headers=JSON)  # no credentials at all
    assert deep.status_code == 400 and deep.json()["detail"].startswith("body:")
    # brackets inside strings are no nesting; 32 levels are still parsed (and refused as a type error)
    inside = await fx_client.post("/api/login", json={"Username": "[" * 200, "Password": "x"})
    assert inside.status_code == 401
    nested = await fx_client.post("/api/login", content="[" * 32 + "]" * 32, headers=JSON)
    assert nested.status_code == 400 and "nested" not in nested.json()["detail"]
    ok = await fx_client.post("/api/login", json={"Username": "admin", "Password": ADMIN_PASSWORD})
    assert ok.status_code == 200
    no_traceback(caplog)


# -- D11: stored although invalid ----------------------------------------------------------------


async def test_D11_arabic_indic_digit_neither_stops_nor_creates_job_3(
    fx_client: AsyncTestClient, fx_store: SqliteStore, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    for path in ("/api/job_stop/\u0663", "/api/job_stop/1_2", "/api/job_stop/%203"):
        response = await fx_client.patch(path, json={"ExitCode": 0}, headers=admin)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["detail"].startswith("id:")
    # job ids in paths: ASCII digits (a job id parameter names itself "id", an integer one its name)
    for path, name in (
        ("/api/job/\u0663", "id:"),
        ("/api/job/" + "9" * 30, "id:"),
        ("/api/admin/refresh_metadata/\u0663", "job_id:"),
    ):
        method = "POST" if "refresh" in path else "GET"
        response = await fx_client.request(method, path, headers=admin)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["detail"].startswith(name)
    assert job_count(fx_store) == 0
    no_traceback(caplog)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/job_start", {"Id": 7, "NumNodes": -5}, "NumNodes"),
        ("/api/job_start", {"Id": 7, "UserName": "a\u202eb"}, "UserName"),
        ("/api/job_start", {"Id": 7, "JobName": "x\n[ERROR] forged"}, "JobName"),
        ("/api/job_start", {"Id": 2**32}, "Id"),
        ("/api/job_stop/7", {"ExitCode": -(2**40)}, "ExitCode"),
    ],
)
async def test_D11_out_of_range_integers_and_bad_names_are_not_stored(
    fx_client: AsyncTestClient,
    fx_store: SqliteStore,
    admin: dict[str, str],
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    method = "PUT" if "start" in path else "PATCH"
    response = await fx_client.request(method, path, json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]
    assert job_count(fx_store) == 0


@pytest.mark.parametrize("name", ["%00", "a%00b", "%E2%80%AE", "..%2F..%2Fetc", "a%20b"])
async def test_D11_role_patch_creates_no_user_with_a_name_unix_refuses(
    fx_client: AsyncTestClient, fx_store: SqliteStore, admin: dict[str, str], name: str
) -> None:
    before = db_of(fx_store).execute("SELECT count(*) FROM users").fetchone()[0]
    response = await fx_client.patch(f"/api/config/users/{name}", json={"Roles": ["user"]}, headers=admin)
    assert response.status_code in (400, 404), response.text
    if response.status_code == 400:
        assert response.json()["detail"].startswith("user:")
    assert db_of(fx_store).execute("SELECT count(*) FROM users").fetchone()[0] == before
    # real names still work, including directory-service ones
    good = await fx_client.patch(
        "/api/config/users/carol@EXAMPLE.ORG", json={"Roles": ["user"]}, headers=admin
    )
    assert good.status_code == 200, good.text


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


# -- D10: a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real file system that really fills up (needs root)."""
    with small_tmpfs(tmp_path / "small", "2m") as mount:
        yield mount


def fill(directory: Path) -> Callable[[], None]:
    """Fill the file system of ``directory`` to the last byte; returns the function that frees it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return lambda: filler.unlink()


@pytest.fixture
async def small_disk_client(small_disk: Path) -> AsyncIterator[tuple[AsyncTestClient, SqliteStore]]:
    """The app over a database on the small disk (made here, before the test's log capture starts:
    Litestar's start-up logging configuration replaces the root logger's handlers)."""
    settings = CollectorSettings(state_dir=small_disk, admin_password=ADMIN_PASSWORD)
    store = SqliteStore(settings.database_path)
    store.open()
    await ensure_admin(store, settings)
    try:
        async with AsyncTestClient(app=create_app(store, settings)) as client:
            yield client, store
    finally:
        store.close()


async def test_D10_full_disk_is_503_with_retry_after_logged_once(
    small_disk: Path,
    small_disk_client: tuple[AsyncTestClient, SqliteStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, store = small_disk_client
    admin = {"Authorization": f"Bearer {await login(client, 'admin', ADMIN_PASSWORD)}"}
    assert (await client.put("/api/job_start", json={"Id": 1}, headers=admin)).status_code == 200
    db_of(store).execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next write must grow the WAL
    free = fill(small_disk)
    caplog.clear()
    script = "#!/bin/sh\n" + "srun step\n" * 20_000  # 200 KB: pages the disk has no room for
    answers = []
    for i in range(5):  # what an agent or a Slurm hook does: retry
        answers.append(
            await client.put("/api/job_start", json={"Id": 100 + i, "JobScript": script}, headers=admin)
        )
    answers.append(await client.patch("/api/config/users/bob", json={"Roles": ["user"]}, headers=admin))
    for response in answers:
        assert response.status_code == 503, response.text
        assert "disk is full" in response.json()["detail"]
        assert 1 <= int(response.headers["Retry-After"]) <= 300
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "cannot be written" in errors[0], errors
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    # space again: the same call works, and the recovery is logged once
    free()
    again = await client.put("/api/job_start", json={"Id": 100, "JobScript": script}, headers=admin)
    assert again.status_code == 200, again.text
    assert "writable again" in caplog.text


# -- D14: the OpenAPI document -------------------------------------------------------------------


async def test_D14_refresh_metadata_documents_its_503(fx_client: AsyncTestClient) -> None:
    schema = (await fx_client.get("/api/openapi.json")).json()
    responses = schema["paths"]["/api/admin/refresh_metadata/{job_id}"]["post"]["responses"]
    assert "503" in responses
    assert "Slurm" in responses["503"]["description"]
    assert responses["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
