"""`jobpulse-agent once --json`: what an admin debugging a node sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_nvml import MIB, FakeNvml, h200_node
from jobpulse.agent.cli import main
from support import FIXTURES


def test_once_json_shows_jobs_steps_tasks_gpus_and_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeNvml(h200_node()).install(monkeypatch)
    state = tmp_path / "state"
    (state / "jobs").mkdir(parents=True)
    (state / "jobs" / "77.json").write_text(json.dumps({"job_id": "77", "gpus": ["0"]}))
    root = FIXTURES / "scenarios" / "v2_job_id"
    assert (
        main(["once", "--json", "--cgroup-root", str(root), "--state-dir", str(state), "--interval", "0"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    rows = {(j["job_id"], j["step"]): j for j in doc["jobs"]}
    assert set(rows) == {("77", None), ("77", "0"), ("77", "extern")}
    job = rows[("77", None)]
    assert job["mem_current_bytes"] == 2017017856 and job["mem_limit_bytes"] == "unlimited"
    assert job["cpu_cores"] is None  # --interval 0: one reading, no rate
    assert rows[("77", "extern")]["tasks"] == ["task_special"]
    assert job["gpu_util_percent"] == 87 and job["gpu_power_watts"] == pytest.approx(412.345)
    assert len(doc["gpu_devices"]) == 5
    gpu0 = next(g for g in doc["gpus"] if g["uuid"] == h200_node()[0].uuid)
    assert gpu0["job_id"] == "77" and gpu0["mem_total_bytes"] == 143771 * MIB
    assert doc["node_sample"]["mem_total_bytes"] > 0 and doc["node_sample"]["filesystems"]


def test_once_text_is_in_human_units_with_each_job_before_its_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeNvml(h200_node()).install(monkeypatch)
    root = FIXTURES / "scenarios" / "v2_job_id"
    assert main(["once", "--cgroup-root", str(root), "--state-dir", str(tmp_path), "--interval", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f"1 job(s), 2 step(s) under {root}")
    job = next(i for i, line in enumerate(out) if line.startswith("  job 77:"))
    assert out[job + 1].startswith("    step 0:") and out[job + 2].startswith("    step extern:")
    assert "mem 1.9 GiB (peak" in out[job] and "limit unlimited" in out[job]  # 2017017856 B
    assert " B (" not in out[job] and "e+" not in "\n".join(out)  # no raw byte counts
    assert "tasks task_special" in out[job + 2]
    assert any(line.startswith("  GPU ") and "of 140.4 GiB" in line for line in out)


def test_once_text_summarizes_a_node_with_hundreds_of_cgroups() -> None:
    from jobpulse.agent.oncetext import SHOWN_WHEN_MANY, render_once

    rows = []
    for job in range(300):
        rows.append({"job_id": str(1000 + job), "step": None, "cpu_cores": job / 100, "alloc_cpus": 4,
                     "mem_current_bytes": 2**30, "mem_peak_bytes": 2**30, "mem_limit_bytes": 2**32})  # fmt: skip
        rows.append({"job_id": str(1000 + job), "step": "batch", "cpu_cores": job / 100, "alloc_cpus": 4})
    doc = {"node": "n1", "cgroup_root": "/sys/fs/cgroup", "jobs": rows, "gpu_devices": [], "gpus": []}
    out = render_once(doc).splitlines()
    assert out[0] == "node n1: 300 job(s), 300 step(s) under /sys/fs/cgroup"
    assert out[1].startswith("  600 cgroups: 448.5 cores in use, 300.0 GiB of memory")
    listed = [line for line in out if line.startswith("  job ")]
    assert len(listed) == SHOWN_WHEN_MANY and listed[0].startswith("  job 1299: 2.99 of 4 cores")
