"""systemd units: `systemd-analyze verify` accepts them (no unknown keys), and they keep their hardening."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest
from support import ROOT

UNITS = ROOT / "systemd"
BIN = ROOT / ".venv" / "bin"
HARDENING = (
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "StateDirectory",
    "RuntimeDirectory",
)


def service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser["Service"]


@pytest.mark.parametrize("name", ["jobpulse-agent.service", "jobpulse-collector.service"])
def test_unit_verifies(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed on this machine")
    # ExecStart points at the install location; verify checks it exists, so use this checkout's.
    text = (UNITS / name).read_text().replace("/opt/jobpulse/bin/", f"{BIN}/")
    (tmp_path / name).write_text(text)
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / name)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr and "ignoring" not in done.stderr, done.stderr


@pytest.mark.parametrize("name", ["jobpulse-agent.service", "jobpulse-collector.service"])
def test_unit_is_hardened(name: str) -> None:
    unit = service(name)
    assert unit["NoNewPrivileges"] == "yes" and unit["ProtectSystem"] == "strict"
    assert unit["ProtectHome"] == "yes" and unit["PrivateTmp"] == "yes" and unit["Restart"] == "on-failure"
    assert all(key in unit for key in HARDENING)
    assert unit["StateDirectoryMode"] == "0700" and unit["RuntimeDirectoryMode"] == "0700"


def test_agent_socket_matches_runtime_directory() -> None:
    unit = service("jobpulse-agent.service")
    assert f"--socket /run/{unit['RuntimeDirectory']}/agent.sock" in unit["ExecStart"]
    assert f"--state-dir /var/lib/{unit['StateDirectory']}" in unit["ExecStart"]


def test_collector_runs_as_the_packages_user_and_is_not_restarted_on_a_downgrade() -> None:
    """The package makes the static user `jobpulse` and gives it the state directory (a DynamicUser's
    uid would change under the database); `serve` exits 3 on a newer schema, which restarting cannot fix."""
    from jobpulse.collector.cli import EXIT_SCHEMA_TOO_NEW

    unit = service("jobpulse-collector.service")
    assert unit["User"] == unit["Group"] == "jobpulse" and "DynamicUser" not in unit
    assert unit["RestartPreventExitStatus"] == str(EXIT_SCHEMA_TOO_NEW)
    assert f"--state-dir /var/lib/{unit['StateDirectory']}" in unit["ExecStart"]
