"""Both doctors against real things: a running collector (token, clock), a port nobody listens on, small
tmpfs file systems filled to the last byte, and databases a newer collector wrote or that are damaged."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from jobpulse.collector.store.migrations import LATEST, migrate
from support import ROOT, small_tmpfs, start_collector, stop

BIN = ROOT / ".venv" / "bin"


def run_doctor(which: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """The installed command, as an admin runs it: (exit status, findings by check, the human report)."""
    base = [str(BIN / f"jobpulse-{which}"), "doctor", *args]
    environ = {**os.environ, **(env or {})}
    human = subprocess.run(base, capture_output=True, text=True, env=environ, timeout=60, check=False)
    done = subprocess.run(
        [*base, "--json"], capture_output=True, text=True, env=environ, timeout=60, check=False
    )
    assert done.returncode == human.returncode, human.stdout + done.stderr
    return done.returncode, {f["check"]: f for f in json.loads(done.stdout)}, human.stdout


def agent_args(tmp_path: Path, collector: str) -> list[str]:
    config = tmp_path / "agent.toml"
    config.write_text("gpus = false\n")
    return ["--config", str(config), "--state-dir", str(tmp_path / "agent"), "--collector", collector]


def fill_up(path: Path) -> None:
    """Write zeros to ``path`` until its file system says ENOSPC (unbuffered: the error comes here)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_agent_doctor_token_and_clock_against_a_real_collector(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "collector", env={"JOBPULSE_TOKEN": "right-token"})
    try:
        args = agent_args(tmp_path, collector.grpc_target)
        code, found, report = run_doctor("agent", *args, env={"JOBPULSE_TOKEN": "wrong-token"})
        assert code == 2
        assert found["collector"]["status"] == "fail"
        assert "refused this node's token (wrong)" in found["collector"]["message"]
        assert "token" in found["collector"]["fix"] and "right-token" not in report
        _code, found, _ = run_doctor("agent", *args)  # no token at all
        assert "(none set)" in found["collector"]["message"]

        _code, found, _ = run_doctor("agent", *args, env={"JOBPULSE_TOKEN": "right-token"})
        assert (
            found["collector"]["status"] == "ok"
            and "accepts this node's token" in found["collector"]["message"]
        )
        assert found["clock"]["status"] == "ok", found["clock"]
        assert (
            "collector's" in found["clock"]["message"]
            and "this node's clock is 0.0" in found["clock"]["message"]
        )
        # The probe stored nothing: no node was registered by it.
        db = sqlite3.connect(collector.state / "jobpulse.db")
        assert db.execute("SELECT count(*) FROM nodes").fetchone()[0] == 0
        assert "refused agent stream" in collector.log.read_text()  # the collector logged the bad token
    finally:
        stop(collector.proc)


def test_agent_doctor_collector_down(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    code, found, report = run_doctor("agent", *agent_args(tmp_path, target), "--timeout", "3")
    assert code == 2
    assert (
        found["collector"]["status"] == "fail" and f"cannot reach {target}" in found["collector"]["message"]
    )
    assert "start jobpulse-collector" in found["collector"]["fix"]
    assert found["clock"]["status"] == "info"
    assert "FAIL  collector" in report


def test_agent_doctor_full_spool_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "2m") as mount:
        state = mount / "agent"
        (state / "spool").mkdir(parents=True)
        (state / "spool" / "state.json").write_text('{"stream_id": "x", "floor": 0}')
        fill_up(mount / "filler")
        config = tmp_path / "agent.toml"
        config.write_text("gpus = false\n")
        code, found, report = run_doctor(
            "agent",
            "--config",
            str(config),
            "--state-dir",
            str(state),
            "--collector",
            "127.0.0.1:1",
            "--timeout",
            "2",
        )
    assert code == 2
    assert found["spool-disk"]["status"] == "fail" and found["spool-disk"]["message"].startswith(
        "full: 0 B free"
    )
    assert "free space" in found["spool-disk"]["fix"]
    assert "FAIL  spool-disk" in report


def test_collector_doctor_healthy_then_full_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "4m") as mount:
        db = mount / "jobpulse.db"
        con = sqlite3.connect(db)
        migrate(con)
        con.close()
        code, found, _ = run_doctor(
            "collector", "--config", str(tmp_path / "none.toml"), "--state-dir", str(mount)
        )
        assert found["database"]["status"] == "ok" and found["schema"]["status"] == "ok"
        assert found["disk"]["status"] == "warn"  # 4 MiB is less than the 2 GiB a collector wants
        fill_up(mount / "filler")
        code, found, report = run_doctor(
            "collector", "--config", str(tmp_path / "none.toml"), "--state-dir", str(mount), "--full"
        )
    assert code == 2
    assert found["disk"]["status"] == "fail" and found["disk"]["message"].startswith("full: 0 B free")
    assert "503" in found["disk"]["fix"]
    assert found["database"]["status"] == "ok" and "integrity check" in found["database"]["message"]
    assert "FAIL  disk" in report


def test_collector_doctor_and_serve_refuse_a_newer_schema(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    con = sqlite3.connect(state / "jobpulse.db")
    con.execute("PRAGMA journal_mode=WAL")  # as every collector leaves it
    migrate(con)
    con.execute(f"PRAGMA user_version = {LATEST + 1}")  # what a newer collector leaves behind
    con.close()
    before = (state / "jobpulse.db").read_bytes()
    code, found, _ = run_doctor(
        "collector", "--config", str(tmp_path / "none.toml"), "--state-dir", str(state)
    )
    assert code == 2 and found["schema"]["status"] == "fail"
    assert (
        f"schema version {LATEST + 1} is newer than this collector ({LATEST})" in found["schema"]["message"]
    )
    serve = subprocess.run(
        [
            str(BIN / "jobpulse-collector"),
            "serve",
            "--config",
            str(tmp_path / "none.toml"),
            "--state-dir",
            str(state),
            "--http-port",
            "0",
            "--grpc-listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert serve.returncode == 3, serve.stderr
    assert "refusing to start: database schema version" in serve.stderr and "Traceback" not in serve.stderr
    assert (state / "jobpulse.db").read_bytes() == before  # nothing written


def test_collector_doctor_older_schema_and_damaged_database(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    con = sqlite3.connect(state / "jobpulse.db")
    migrate(con, target=LATEST - 2)
    con.close()
    code, found, _ = run_doctor(
        "collector", "--config", str(tmp_path / "none.toml"), "--state-dir", str(state)
    )
    assert found["schema"]["status"] == "info" and f"migrates it to {LATEST}" in found["schema"]["message"]
    (state / "jobpulse.db").write_bytes(b"this is not a database" * 100)
    code, found, _ = run_doctor(
        "collector", "--config", str(tmp_path / "none.toml"), "--state-dir", str(state)
    )
    assert code == 2 and found["database"]["status"] == "fail" and "restore" in found["database"]["fix"]


def test_collector_doctor_refuses_open_ingest(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text('grpc_listen = "0.0.0.0:50999"\n')
    code, found, _ = run_doctor("collector", "--config", str(config), "--state-dir", str(tmp_path))
    assert code == 2 and found["config"]["status"] == "fail" and "token" in found["config"]["message"]
    assert found["database"]["status"] == "info"  # no database yet: made at the first start


def test_agent_doctor_tls(tmp_path: Path) -> None:
    """With TLS: the right CA passes; another CA (or none) fails with a fix that speaks of TLS."""
    from test_auth_tls import make_certs

    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other")
    env = {
        "JOBPULSE_TOKEN": "t",
        "JOBPULSE_TLS_CERT": str(certs / "server.crt"),
        "JOBPULSE_TLS_KEY": str(certs / "server.key"),
    }
    collector = start_collector(tmp_path / "collector", env=env)
    try:
        args = agent_args(tmp_path, collector.grpc_target)
        _code, found, _ = run_doctor(
            "agent", *args, env={"JOBPULSE_TOKEN": "t", "JOBPULSE_TLS_CA": str(certs / "ca.crt")}
        )
        assert found["collector"]["status"] == "ok" and "(TLS)" in found["collector"]["message"]
        code, found, _ = run_doctor(
            "agent", *args, env={"JOBPULSE_TOKEN": "t", "JOBPULSE_TLS_CA": str(other / "ca.crt")}
        )
        assert code == 2 and found["collector"]["status"] == "fail"
        assert "TLS failed: tls_ca must be the CA" in found["collector"]["fix"], found["collector"]
    finally:
        stop(collector.proc)
