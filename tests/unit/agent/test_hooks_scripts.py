"""The packaged prolog.d/epilog.d scripts: always exit 0, within 2 s, even when the agent command hangs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from support import ROOT

SCRIPTS = {
    kind: ROOT / "packaging" / "slurm" / f"{kind}.d" / "50-jobpulse.sh" for kind in ("prolog", "epilog")
}
AGENT = ROOT / ".venv" / "bin" / "jobpulse-agent"


def run_script(kind: str, slurm_dir: Path, **env: str) -> tuple[int, float]:
    started = time.monotonic()
    done = subprocess.run(
        [str(SCRIPTS[kind])],
        env={
            "PATH": "/usr/bin:/bin",
            "SLURM_CONF": str(slurm_dir / "slurm.conf"),
            "SLURM_JOB_ID": "41",
            **env,
        },
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode, time.monotonic() - started


@pytest.mark.parametrize("kind", ["prolog", "epilog"])
def test_script_reaches_the_agent_command_through_the_env_file(kind: str, tmp_path: Path) -> None:
    if not AGENT.exists():
        pytest.skip("no .venv/bin/jobpulse-agent (run scripts/dev.sh run true)")
    state = tmp_path / "state"
    (tmp_path / "jobpulse-hook.env").write_text(
        f"JOBPULSE_AGENT={AGENT}\nJOBPULSE_STATE_DIR={state}\nJOBPULSE_SOCKET={tmp_path}/none.sock\n"
    )
    code, took = run_script(kind, tmp_path, SLURM_JOB_USER="alice", SLURM_NODELIST="vm")
    assert code == 0 and took < 2.0
    [event] = [json.loads(p.read_text()) for p in (state / "events").glob("*.json")]
    assert event["type"] == ("start" if kind == "prolog" else "stop")
    assert event["meta"]["job_id"] == "41" and event["meta"]["user"] == "alice"


@pytest.mark.parametrize("kind", ["prolog", "epilog"])
def test_script_survives_a_hanging_or_failing_agent(kind: str, tmp_path: Path) -> None:
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    fail = tmp_path / "fail"
    fail.write_text("#!/bin/sh\nexit 7\n")
    for stub in (hang, fail):
        stub.chmod(0o755)
        (tmp_path / "jobpulse-hook.env").write_text(f"JOBPULSE_AGENT={stub}\n")
        code, took = run_script(kind, tmp_path)
        assert code == 0, stub.name
        assert took < 2.0, (stub.name, took)
    (tmp_path / "jobpulse-hook.env").write_text("JOBPULSE_AGENT=/nonexistent/jobpulse-agent\n")
    assert run_script(kind, tmp_path)[0] == 0


def test_scripts_are_executable() -> None:
    for script in SCRIPTS.values():
        assert os.access(script, os.X_OK), script
