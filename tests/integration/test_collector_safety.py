"""Issue 14, the defects only a real `jobpulse-collector serve` shows: forwarded headers on loopback (D7),
file permissions under the usual umask and malformed CORS origins (D12), settings out of range (D16)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import Collector, start_collector, stop


def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    """Run ``jobpulse-collector serve ARGS`` until it exits (or ``timeout``: then it is stopped and
    AssertionError names what it printed, since a start that should be refused went on running)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobpulse.collector.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"the collector started although it should not have:\n{out[-2000:]}") from None
    return proc.returncode, out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- D16: settings out of range ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        (["--http-port", "99999"], {}, "http_port"),
        (["--http-port", "-1"], {}, "http_port"),
        (["--grpc-listen", "127.0.0.1:70000"], {}, "grpc_listen"),
        ([], {"JOBPULSE_HTTP_PORT": "\u0663"}, "JOBPULSE_HTTP_PORT"),
        ([], {"JOBPULSE_SESSION_TTL": "-5"}, "JOBPULSE_SESSION_TTL"),
        ([], {"JOBPULSE_RETENTION_INTERVAL": "nan"}, "JOBPULSE_RETENTION_INTERVAL"),
        ([], {"JOBPULSE_HTTP_RATE_LIMIT_PER_MINUTE": "-1"}, "JOBPULSE_HTTP_RATE_LIMIT_PER_MINUTE"),
        ([], {"JOBPULSE_LOG_LEVEL": "LOUD"}, "JOBPULSE_LOG_LEVEL"),
    ],
    ids=["D16-http-port-99999", "http-port-neg", "grpc-port", "env-digit", "ttl", "nan", "rate", "log-level"],
)
def test_D16_out_of_range_settings_stop_the_start_naming_the_setting(
    tmp_path: Path, args: list[str], env: dict[str, str], setting: str
) -> None:
    rc, out = serve("--state-dir", str(tmp_path / "state"), "--grpc-listen", "127.0.0.1:0", *args, env=env)
    assert rc != 0
    lines = [line for line in out.splitlines() if line.startswith("jobpulse-collector: ")]
    assert len(lines) == 1 and setting in lines[0], out
    assert "Traceback" not in out


# -- D12: malformed CORS origins; permissions under umask 022 ----------------------------------


@pytest.mark.parametrize(
    "origin",
    ["jobs.example.org", "https://jobs.example.org/", "https://jobs.example.org/app", "https://x:99999"],
)
def test_D12_malformed_cors_origin_stops_the_start(tmp_path: Path, origin: str) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[http]\ncors_origins = ["https://ok.example.org", "{origin}"]\n')
    rc, out = serve(
        "--config", str(config), "--state-dir", str(tmp_path / "state"), "--grpc-listen", "127.0.0.1:0"
    )
    assert rc != 0
    assert "http.cors_origins" in out and origin in out, out
    assert "Traceback" not in out


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual login umask; inherited by the collector started below
    try:
        yield
    finally:
        os.umask(old)


def test_D12_state_directory_and_database_are_private_under_umask_022(
    tmp_path: Path, umask_022: None
) -> None:
    state = tmp_path / "var" / "lib" / "jobpulse"  # does not exist yet: the collector makes it
    # support.start_collector keeps its ready file and log in tmp_path; the later --state-dir wins
    collector = start_collector(tmp_path, "--state-dir", str(state))
    try:
        collector.login()  # a session row: the WAL has been written
        files = {p.name: mode(p) for p in state.iterdir()}
        assert mode(state) == 0o700
        assert {"jobpulse.db", "jobpulse.db-wal", "jobpulse.db-shm", "jwt-secret"} <= set(files), files
        assert all(m == 0o600 for m in files.values()), {n: oct(m) for n, m in files.items()}
    finally:
        stop(collector.proc)
    assert "Traceback" not in collector.log.read_text()


def test_D12_existing_database_of_ours_is_made_private(tmp_path: Path, umask_022: None) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "jobpulse.db").touch(mode=0o644)  # what an older version left (empty: migrated now)
    collector = start_collector(tmp_path, "--state-dir", str(state))
    try:
        assert mode(state / "jobpulse.db") == 0o600
        assert mode(state / "jobpulse.db-wal") == 0o600
    finally:
        stop(collector.proc)
    assert "other local users can list it" in collector.log.read_text()  # the 0755 directory is named


# -- D7: forwarded headers are believed only from configured proxies ----------------------------


@pytest.fixture
def strict_login_collector(tmp_path: Path) -> Iterator[Collector]:
    collector = start_collector(tmp_path, env={"JOBPULSE_HTTP_LOGIN_RATE_LIMIT_PER_MINUTE": "3"})
    yield collector
    stop(collector.proc)


def test_D7_login_rate_limit_holds_with_a_new_x_forwarded_for_per_request(
    strict_login_collector: Collector,
) -> None:
    collector = strict_login_collector
    statuses = []
    for i in range(6):
        response = httpx.post(
            collector.url + "/api/login",
            json={"Username": "admin", "Password": f"guess-{i}"},
            headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            timeout=10,
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429, 429, 429], statuses
    log = collector.log.read_text()
    assert "203.0.113." not in log  # the peer (127.0.0.1) is logged, not what the client claims
    assert "Traceback" not in log


def test_D7_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    collector = start_collector(
        tmp_path,
        env={"JOBPULSE_HTTP_LOGIN_RATE_LIMIT_PER_MINUTE": "3", "JOBPULSE_HTTP_TRUSTED_PROXIES": "127.0.0.1"},
    )
    try:
        for i in range(5):  # each forwarded client has its own budget behind the trusted proxy
            response = httpx.post(
                collector.url + "/api/login",
                json={"Username": "admin", "Password": "wrong"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
                timeout=10,
            )
            assert response.status_code == 401, response.text
    finally:
        stop(collector.proc)
    assert "from 198.51.100.5" in collector.log.read_text()


def test_D7_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    rc, out = serve(
        "--state-dir",
        str(tmp_path / "state"),
        "--grpc-listen",
        "127.0.0.1:0",
        env={"JOBPULSE_HTTP_TRUSTED_PROXIES": "*"},
    )
    assert rc != 0 and "JOBPULSE_HTTP_TRUSTED_PROXIES" in out and "Traceback" not in out, out
