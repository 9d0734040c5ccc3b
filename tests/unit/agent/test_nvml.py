"""GPU sampling and attribution with pynvml mocked at its call boundary (values of a real H200 node)."""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import astuple
from pathlib import Path

import pytest
from fake_nvml import H200_TOTAL, MIB, FakeNvml, h200_node
from jobpulse.agent import jobmap
from jobpulse.agent.sampler import Sampler, gpu_source
from jobpulse.agent.settings import AgentSettings
from jobpulse.agent.sources.nvml import NvmlSource
from jobpulse.agent.wire import GPU_VALUE_FIELDS
from support import FIXTURES

GPU0, GPU1, GPU2 = (d.uuid for d in h200_node())
MIG_A, MIG_B = (m.uuid for m in h200_node()[1].migs)
TASK_CGROUP = "0::/system.slice/slurmstepd.scope/job_77/step_0/user/task_0\n"


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml(h200_node())
    fake.install(monkeypatch)
    return fake


def proc_root(tmp_path: Path, cgroups: dict[int, str]) -> Path:
    """A /proc with just the cgroup files of the given pids (as the kernel writes them)."""
    root = tmp_path / "proc"
    for pid, text in cgroups.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cgroup").write_text(text)
    return root


def test_devices_and_mig_instances_are_listed_for_hello(nvml: FakeNvml) -> None:
    source = NvmlSource()
    assert source.start()
    infos = {i.uuid: i for i in source.infos()}
    assert list(infos) == [GPU0, GPU1, MIG_A, MIG_B, GPU2]
    assert infos[GPU0].name == "NVIDIA H200" and infos[GPU0].memory_total_bytes == H200_TOTAL
    assert infos[GPU0].pci_bus_id == "00000000:19:00.0" and infos[GPU0].index == 0
    assert infos[MIG_A].parent_uuid == GPU1 and infos[MIG_A].memory_total_bytes == 17920 * MIB
    assert infos[GPU1].parent_uuid == ""


def test_per_device_values_and_slow_calls_every_n_ticks(nvml: FakeNvml) -> None:
    source = NvmlSource(process_every=3, energy_every=2)
    source.start()
    first = {r.uuid: r for r in source.sample()}
    g = first[GPU0]
    assert (g.util_percent, g.mem_util_percent) == (87, 41)
    assert (g.mem_used_bytes, g.mem_total_bytes) == (1530 * MIB, H200_TOTAL)
    assert g.power_watts == pytest.approx(412.345)
    assert (g.temperature_c, g.sm_clock_mhz) == (48, 1980)
    assert g.energy_joules == pytest.approx(9_876_543.21)
    assert source.processes is not None and [(p.pid, p.used_bytes) for p in source.processes] == [
        (4242, 1002 * MIB),
        (5151, 1002 * MIB),
    ]
    second = {r.uuid: r for r in source.sample()}
    assert math.isnan(second[GPU0].energy_joules)  # energy only every 2nd tick
    assert not source.processes_fresh
    source.sample()
    source.sample()
    assert nvml.calls[(GPU0, "energy")] == 2
    assert nvml.calls[(GPU0, "processes")] == 2  # ticks 0 and 3
    assert nvml.calls[(GPU0, "util")] == 4


def test_not_supported_calls_are_nan_and_not_repeated(nvml: FakeNvml) -> None:
    source = NvmlSource(energy_every=1)
    source.start()
    for _ in range(3):
        rows = {r.uuid: r for r in source.sample()}
    assert math.isnan(rows[GPU2].power_watts) and math.isnan(rows[GPU2].energy_joules)
    assert rows[GPU2].temperature_c == 29  # the rest of the device still measured
    assert nvml.calls[(GPU2, "power")] == 1
    mig = rows[MIG_A]
    assert math.isnan(mig.util_percent) and math.isnan(mig.power_watts) and math.isnan(mig.temperature_c)
    assert (mig.mem_used_bytes, mig.mem_total_bytes) == (1050 * MIB, 17920 * MIB)
    assert math.isnan(rows[GPU1].util_percent) and rows[GPU1].power_watts == 118
    # A MIG parent's processes are listed per instance, never twice.
    assert nvml.calls[(GPU1, "processes")] == 0


def test_job_gets_its_gpu_from_the_prolog_index_and_its_process_memory(
    nvml: FakeNvml, tmp_path: Path
) -> None:
    source = NvmlSource()
    source.start()
    sampler = Sampler(
        FIXTURES / "scenarios" / "v2_job_id",
        gpu_source=source,
        proc_root=proc_root(tmp_path, {4242: TASK_CGROUP}),
    )
    sampler.job_started({"job_id": "77", "gpus": ["0"]})  # SLURM_JOB_GPUS=0 -> NVML index 0
    batch = sampler.tick()
    gpus = {u: batch.gpus.job_id[i] for i, u in enumerate(batch.gpus.uuid)}
    assert gpus[GPU0] == "77" and gpus[GPU2] == ""
    whole = [
        i
        for i, (j, s) in enumerate(zip(batch.jobs.job_id, batch.jobs.step, strict=True))
        if j == "77" and not s
    ]
    (row,) = whole
    assert batch.jobs.gpu_util_percent[row] == 87
    assert batch.jobs.gpu_mem_bytes[row] == 1002 * MIB  # its process's memory, not the whole device's
    assert batch.jobs.gpu_power_watts[row] == pytest.approx(412.345)
    steps = [i for i, s in enumerate(batch.jobs.step) if s]
    assert all(math.isnan(batch.jobs.gpu_util_percent[i]) for i in steps)
    assert len(batch.gpus.uuid) == 5 and all(len(getattr(batch.gpus, c)) == 5 for c in GPU_VALUE_FIELDS)


def test_unclaimed_gpu_is_attributed_by_its_processes_and_conflicts_logged_once(
    nvml: FakeNvml, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nvml.devices[2].processes = [(4242, 2048 * MIB)]  # job 77's process also on GPU 2
    nvml.devices[0].processes.append((6000, 500 * MIB))  # job 99's process on job 77's GPU 0
    root = tmp_path / "cg"
    shutil.copytree(FIXTURES / "scenarios" / "v2_job_id", root)
    procs = proc_root(
        tmp_path, {4242: TASK_CGROUP, 6000: "0::/system.slice/slurmstepd.scope/job_99/step_0\n"}
    )
    source = NvmlSource(process_every=1)
    source.start()
    sampler = Sampler(root, gpu_source=source, proc_root=procs)
    sampler.job_started({"job_id": "77", "gpus": [GPU0]})
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            batch = sampler.tick()
    owners = dict(zip(batch.gpus.uuid, batch.gpus.job_id, strict=True))
    assert owners[GPU0] == "77" and owners[GPU2] == "77"
    row = list(batch.jobs.job_id).index("77")
    assert batch.jobs.gpu_mem_bytes[row] == (1002 + 2048) * MIB
    assert batch.jobs.gpu_util_percent[row] == pytest.approx((87 + 0) / 2)
    conflicts = [r for r in caplog.records if "runs processes on it" in r.getMessage()]
    assert len(conflicts) == 1 and "job 99" in conflicts[0].getMessage()


def test_mig_instance_attribution_from_cuda_visible_devices(nvml: FakeNvml, tmp_path: Path) -> None:
    source = NvmlSource()
    source.start()
    procs = proc_root(tmp_path, {5151: "0::/system.slice/slurmstepd.scope/job_77/step_0/user/task_0\n"})
    sampler = Sampler(FIXTURES / "scenarios" / "v2_job_id", gpu_source=source, proc_root=procs)
    sampler.job_started({"job_id": "77", "gpus": [MIG_A]})
    batch = sampler.tick()
    owners = dict(zip(batch.gpus.uuid, batch.gpus.job_id, strict=True))
    assert owners[MIG_A] == "77" and owners[MIG_B] == "" and owners[GPU1] == ""
    assert owners[GPU0] == ""  # pid 4242 on GPU 0 is in no job on this node's /proc
    row = list(batch.jobs.job_id).index("77")
    assert batch.jobs.gpu_mem_bytes[row] == 1002 * MIB  # its process on the MIG instance
    assert math.isnan(batch.jobs.gpu_power_watts[row])  # a MIG instance has no power of its own


def test_no_nvml_library_means_no_gpu_metrics_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    # This machine has no NVIDIA driver: libnvidia-ml.so.1 does not load.
    with caplog.at_level(logging.INFO):
        assert gpu_source(AgentSettings()) is None
    assert len([r for r in caplog.records if "no GPU metrics" in r.getMessage()]) == 1
    source = NvmlSource()
    assert not source.start() and not source.start()
    assert source.sample() == []
    sampler = Sampler(FIXTURES / "scenarios" / "v2_job_id", gpu_source=None)
    batch = sampler.tick()
    assert len(batch.gpus.uuid) == 0 and all(math.isnan(v) for v in batch.jobs.gpu_util_percent)


def test_hello_lists_the_gpus(nvml: FakeNvml, tmp_path: Path) -> None:
    from jobpulse.agent.daemon import Agent

    settings = AgentSettings(cgroup_root=FIXTURES / "scenarios" / "v2_job_id", state_dir=tmp_path)
    agent = Agent(settings)
    hello = agent.hello()
    assert [g.uuid for g in hello.gpus] == [GPU0, GPU1, MIG_A, MIG_B, GPU2]
    assert agent.sampler.gpu_source is not None
    assert [
        (g.uuid, g.name, g.memory_total_bytes, g.pci_bus_id, g.index, g.parent_uuid) for g in hello.gpus
    ] == [astuple(i) for i in agent.sampler.gpu_source.infos()]
    assert hello.gpus[2].parent_uuid == GPU1 and hello.gpus[2].memory_total_bytes == 17920 * MIB


@pytest.mark.parametrize(
    ("text", "job"),
    [
        (TASK_CGROUP, "77"),
        ("12:memory:/slurm/uid_1000/job_88/step_batch/task_0\n0::/\n", "88"),
        ("4:memory:/slurm_node1/uid_0/job_90/step_0/task_1\n", "90"),
        ("0::/system.slice/node2_slurmstepd.scope/s0B2CW5Q8JN4FD/step_0/user/task_0\n", "5005"),
        ("0::/system.slice/node2_slurmstepd.scope/s0B2CW5Q8JN4FE/step_0\n", None),  # unknown SLUID
        ("0::/user.slice/user-1000.slice/session-3.scope\n", None),
        ("0::/system.slice/job_12.service\n", None),
    ],
)
def test_pid_to_job_through_proc_cgroup(tmp_path: Path, text: str, job: str | None) -> None:
    root = proc_root(tmp_path, {31337: text})
    assert jobmap.job_of_pid(31337, root, {"s0B2CW5Q8JN4FD": "5005"}) == job
    assert jobmap.job_of_pid(31338, root) is None  # exited


def test_library_present_but_init_failing_is_no_gpu_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pynvml
    from jobpulse.agent.sources import nvml as nvml_source

    # A node whose driver is installed but not loaded: the real pynvml raises from nvmlInit.
    monkeypatch.setattr(nvml_source, "nvml_library_present", lambda: True)
    with caplog.at_level(logging.INFO):
        source = NvmlSource()
        assert not source.start()
    assert source.sample() == [] and source.infos() == []
    assert any("NVML unavailable" in r.getMessage() for r in caplog.records)
    assert isinstance(pynvml.NVMLError_LibraryNotFound(), pynvml.NVMLError)
