"""Property-based fuzzing of the job-data API over its own OpenAPI schema (schemathesis).

Short by default (JOBPULSE_FUZZ_EXAMPLES examples per operation, default 15, so the whole run stays
well under a minute on two cores); set JOBPULSE_FUZZ_EXAMPLES=500 for a long run. Requests are
authenticated as the admin against a real SQLite store with realistic jobs. Checked: no 5xx, and
every response matches the schema the OpenAPI document declares for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from seed import add_job, add_samples
from storehelp import db_of, run_async

EXAMPLES = int(os.environ.get("JOBPULSE_FUZZ_EXAMPLES", "15"))
# the routes this module owns; auth/admin routes are fuzzed by their owners' tests
OWN_PATHS = r"^/api/(jobs|job/|metric/|config|search/|tags/)"
T0 = 1_700_000_000


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, dict[str, str]]]:
    state: Path = tmp_path_factory.mktemp("fuzz")
    cfg = CollectorSettings(state_dir=state, admin_password="fuzz-admin-pw")
    store = SqliteStore(cfg.database_path)
    store.open()
    run_async(ensure_admin(store, cfg))
    for i in range(20):
        job_id = 1 + i
        add_job(
            db_of(store),
            job_id,
            f"user{i % 3}",
            start=T0 + i * 100,
            stop=None if i % 5 == 0 else T0 + i * 100 + 3600,
            nodes=("n1", "n2"),
            partition=("cpu", "gpu")[i % 2],
        )
        add_samples(db_of(store), job_id, ("n1", "n2"), T0 + i * 100, 60, tick=60)
    app = create_app(store, cfg)
    with TestClient(app=app) as client:
        token = client.post("/api/login", json={"Username": "admin", "Password": "fuzz-admin-pw"}).json()[
            "token"
        ]
    yield app, {"Authorization": f"Bearer {token}"}
    store.close()


@pytest.mark.slow
def test_api_fuzz(fuzz_app: tuple[object, dict[str, str]]) -> None:
    app, headers = fuzz_app
    api = schemathesis.openapi.from_asgi("/docs/openapi.json", app).include(path_regex=OWN_PATHS)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 9, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

        check()
