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
