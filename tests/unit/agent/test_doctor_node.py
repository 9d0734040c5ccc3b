"""`jobpulse-agent doctor`, node-side checks: the cgroup tree and slurm.conf, as an admin would run it.

The collector check points at a port nobody listens on (1); tests/integration/test_doctor.py covers a
real collector, tokens and full disks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jobpulse.agent.cli import main
from support import FIXTURES, ROOT

HOOKS = ROOT / "packaging" / "slurm"


def doctor(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run the real CLI with --json; (exit status, findings by check name)."""
    config = tmp_path / "agent.toml"
    config.touch()
    code = main(
        [
            "doctor",
            "--json",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "state"),
            "--collector",
            "127.0.0.1:1",
            "--timeout",
            "2",
            *args,
        ]
    )
    findings = json.loads(capsys.readouterr().out)
    return code, {f["check"]: f for f in findings}


def slurm_conf(tmp_path: Path, text: str) -> Path:
    """A slurm.conf with prolog.d/epilog.d next to it, holding the packaged hooks as the docs say (links)."""
    etc = tmp_path / "slurm"
    for kind in ("prolog", "epilog"):
        (etc / f"{kind}.d").mkdir(parents=True, exist_ok=True)
        link = etc / f"{kind}.d" / "50-jobpulse.sh"
        if not link.exists():
            link.symlink_to(HOOKS / f"{kind}.d" / "50-jobpulse.sh")
    conf = etc / "slurm.conf"
    conf.write_text(text.replace("@ETC@", str(etc)))
    return conf


GOOD = """\
ClusterName=test
Prolog=@ETC@/prolog.d/*
Epilog=@ETC@/epilog.d/*
PrologFlags=Alloc,Contain
ProctrackType=proctrack/cgroup
TaskPlugin=task/affinity,task/cgroup
NodeName=n[1-4] CPUs=8 Prolog=/not/a/global/setting
"""


def test_no_cgroup_hierarchy_fails_with_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "cgroup"
    empty.mkdir()
    code, found = doctor(
        capsys, tmp_path, "--cgroup-root", str(empty), "--slurm-conf", str(slurm_conf(tmp_path, GOOD))
    )
    assert code == 2
    assert found["cgroup"]["status"] == "fail"
    assert "no cgroup hierarchy" in found["cgroup"]["message"]
    assert "mount cgroup2" in found["cgroup"]["fix"]


def test_missing_mount_point_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _code, found = doctor(capsys, tmp_path, "--cgroup-root", str(tmp_path / "nowhere"))
    assert found["cgroup"]["status"] == "fail" and "No such file" in found["cgroup"]["message"]


@pytest.mark.parametrize(
    ("version", "layout"),
    [("v2", "system.slice/slurmstepd.scope (1 job(s) now)"), ("v1", "cpuacct/slurm_vm")],
)
def test_cgroup_version_and_slurm_layout_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, version: str, layout: str
) -> None:
    root = FIXTURES / version / "sys" / "fs" / "cgroup"
    _code, found = doctor(capsys, tmp_path, "--cgroup-root", str(root))
    assert found["cgroup"]["status"] == "ok" and f"cgroup {version}" in found["cgroup"]["message"]
    assert found["slurm-cgroups"]["status"] == "ok" and layout in found["slurm-cgroups"]["message"]


def test_cgroup_hierarchy_without_slurm_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    _code, found = doctor(capsys, tmp_path, "--cgroup-root", str(root))
    assert found["cgroup"]["status"] == "ok"
    assert found["slurm-cgroups"]["status"] == "warn" and "proctrack/cgroup" in found["slurm-cgroups"]["fix"]


def test_good_slurm_conf_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _code, found = doctor(capsys, tmp_path, "--slurm-conf", str(slurm_conf(tmp_path, GOOD)))
    for check in ("prolog", "epilog", "prologflags", "slurm-cgroup"):
        assert found[check]["status"] == "ok", found[check]
    assert "50-jobpulse.sh" in found["prolog"]["message"]


def test_missing_prolog_setting_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = slurm_conf(tmp_path, GOOD.replace("Prolog=@ETC@/prolog.d/*\n", ""))
    code, found = doctor(capsys, tmp_path, "--slurm-conf", str(conf))
    assert code == 2
    assert found["prolog"]["status"] == "fail" and "sets no Prolog=" in found["prolog"]["message"]
    assert "Prolog=/etc/slurm/prolog.d/*" in found["prolog"]["fix"]
    assert "/opt/jobpulse/slurm/prolog.d/50-jobpulse.sh" in found["prolog"]["fix"]
    assert found["epilog"]["status"] == "ok"  # the node line's Prolog= is not a global setting


def test_prolog_that_runs_no_jobpulse_hook_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "site-prolog.d"
    other.mkdir()
    (other / "10-site.sh").write_text("#!/bin/sh\nexit 0\n")
    conf = slurm_conf(tmp_path, GOOD.replace("Prolog=@ETC@/prolog.d/*", f"Prolog={other}/*"))
    _code, found = doctor(capsys, tmp_path, "--slurm-conf", str(conf))
    assert found["prolog"]["status"] == "fail" and "runs no jobpulse hook" in found["prolog"]["message"]


def test_included_settings_and_weak_cgroup_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    conf = slurm_conf(tmp_path, "Include hooks.conf\nProctrackType=proctrack/linuxproc\n")
    (conf.parent / "hooks.conf").write_text(
        f"prolog={conf.parent}/prolog.d/*\nEpilog={conf.parent}/epilog.d/*\n"
    )
    _code, found = doctor(capsys, tmp_path, "--slurm-conf", str(conf))
    assert found["prolog"]["status"] == "ok" and found["epilog"]["status"] == "ok"
    assert found["prologflags"]["status"] == "warn" and "PrologFlags=Alloc" in found["prologflags"]["fix"]
    assert (
        found["slurm-cgroup"]["status"] == "warn"
        and "proctrack/linuxproc" in found["slurm-cgroup"]["message"]
    )


def test_report_is_a_line_per_check_with_the_fix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("gpus = false\n")
    conf = slurm_conf(tmp_path, GOOD.replace("Prolog=@ETC@/prolog.d/*\n", ""))
    code = main(
        [
            "doctor",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path),
            "--slurm-conf",
            str(conf),
            "--cgroup-root",
            str(FIXTURES / "v2" / "sys" / "fs" / "cgroup"),
            "--collector",
            "127.0.0.1:1",
            "--timeout",
            "2",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 2
    assert any(line.startswith("FAIL  prolog") for line in out)
    assert any(line.startswith("INFO  nvml") and "gpus = false" in line for line in out)
    assert any(line.strip().startswith("-> add Prolog=") for line in out)
    assert out[-1].startswith("2 failed")  # the prolog and the unreachable collector


def test_bad_config_is_reported_not_raised(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("tick = 'often'\n")
    code = main(["doctor", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 2 and "FAIL  config" in out and "tick" in out
