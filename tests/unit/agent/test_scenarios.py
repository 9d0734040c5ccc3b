"""The sampler against fixture cgroup trees of each Slurm layout (tests/fixtures/scenarios).

Every number is the kernel's own, from the real captures (see
tests/fixtures/build_scenarios.py for the few edits each scenario makes).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from jobpulse.agent import discovery
from jobpulse.agent import sampler as sampler_module
from jobpulse.agent.sampler import Sampler
from jobpulse.agent.sources.base import JobReading
from support import FIXTURES

SCENARIOS = FIXTURES / "scenarios"
SCOPE = "system.slice/slurmstepd.scope"


def rows(sampler: Sampler) -> dict[tuple[str, str], JobReading]:
    return {(r.job_id, r.step): r for r in sampler.collect()}


def copy(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(SCENARIOS / name, root)
    return root


def test_v2_job_id_layout_reports_job_and_steps_exactly() -> None:
    got = rows(Sampler(SCENARIOS / "v2_job_id"))
    assert set(got) == {("77", ""), ("77", "0"), ("77", "extern")}  # system/ (slurmstepd) skipped
    job = got[("77", "")]
    assert (job.cpu_user_seconds, job.cpu_system_seconds) == (6.513926, 3.439945)
    assert job.alloc_cpus == 16
    assert job.mem_current_bytes == 2017017856 and job.mem_peak_bytes == 2017017856
    assert (job.mem_anon_bytes, job.mem_file_bytes) == (947523584, 1051521024)
    assert math.isinf(job.mem_limit_bytes)
    assert job.oom_kills == 0
    assert (job.io_read_bytes, job.io_write_bytes) == (976011264, 67121152)
    assert job.pids == 18
    step0 = got[("77", "0")]
    assert (step0.cpu_user_seconds, step0.cpu_system_seconds) == (6.520375, 3.447147)
    assert step0.mem_current_bytes == 2016243712
    extern = got[("77", "extern")]
    assert (extern.cpu_user_seconds, extern.cpu_system_seconds) == (0.0012, 0.0034)
    assert (extern.mem_current_bytes, extern.mem_peak_bytes, extern.pids) == (430080, 1216512, 1)
    found = discovery.discover(SCENARIOS / "v2_job_id", tasks=True)
    assert found["77"].tasks == {"0": ["task_0"], "extern": ["task_special"]}


def test_cores_used_and_efficiency_against_the_cpuset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy("v2_job_id", tmp_path)
    clock = iter([1_000_000, 1_010_000])
    monkeypatch.setattr(sampler_module, "now_ms", lambda: next(clock))
    sampler = Sampler(root)
    first = rows(sampler)[("77", "")]
    assert math.isnan(first.cpu_cores)  # one reading is not a rate
    # 10 s later the job has used 20 s more user and 4 s more system CPU: 2.4 cores of 16.
    (root / SCOPE / "job_77/cpu.stat").write_text(
        "usage_usec 33953871\nuser_usec 26513926\nsystem_usec 7439945\nnice_usec 0\n"
    )
    second = rows(sampler)[("77", "")]
    assert second.cpu_cores == pytest.approx(2.4)
    assert second.cpu_efficiency == pytest.approx(2.4 / 16)


def test_v2_sluid_directories_map_to_job_ids_from_the_prolog_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "jobs").mkdir(parents=True)
    (state / "jobs" / "77.json").write_text(json.dumps({"job_id": "77", "sluid": "s0B2CW5Q8JN4FD"}))
    got = rows(Sampler(SCENARIOS / "v2_sluid", state_dir=state))
    # The SLUID the prolog announced is job 77; the other one is not reported under a made-up id.
    assert set(got) == {("77", ""), ("77", "0"), ("77", "extern")}
    assert got[("77", "")].mem_current_bytes == 2017017856


def test_sluid_mapping_from_a_start_event_without_state_file() -> None:
    sampler = Sampler(SCENARIOS / "v2_sluid")
    assert rows(sampler) == {}
    sampler.job_started({"job_id": "4242", "sluid": "s0B2CW5Q8JN4FE"})
    assert {key for key in rows(sampler)} == {("4242", ""), ("4242", "0"), ("4242", "extern")}


def test_multiple_slurmd_scopes_are_all_walked() -> None:
    got = rows(Sampler(SCENARIOS / "v2_multi_slurmd"))
    assert {key[0] for key in got} == {"101", "102"}
    assert got[("101", "")].mem_current_bytes == 2017017856
    job = got[("102", "")]
    assert (job.cpu_user_seconds, job.cpu_system_seconds) == (120.0, 5.0)
    assert (job.mem_current_bytes, job.mem_peak_bytes) == (1073741824, 2147483648)
    assert job.alloc_cpus == 16  # 16-23,32-39


def test_v1_uid_layout() -> None:
    got = rows(Sampler(SCENARIOS / "v1_uid"))
    assert set(got) == {("88", ""), ("88", "batch"), ("89", ""), ("89", "batch")}
    job = got[("88", "")]
    assert job.cpu_seconds == pytest.approx(3.483093181)
    assert job.cpu_user_seconds == pytest.approx(3.483093181 * 305 / 347)
    assert job.alloc_cpus == 2
    assert (job.mem_current_bytes, job.mem_peak_bytes) == (367460352, 401317888)
    assert (job.mem_anon_bytes, job.mem_file_bytes) == (321617920, 43614208)
    assert job.mem_limit_bytes == 999997440
    assert math.isnan(job.oom_kills)  # no memory.oom_control in this capture: not measured
    assert math.isnan(job.io_read_bytes) and math.isnan(job.pids)  # no blkio/pids hierarchy
    other = got[("89", "")]
    assert (other.cpu_user_seconds, other.cpu_system_seconds) == pytest.approx((11.0, 1.0))
    assert math.isinf(other.mem_limit_bytes)  # the kernel's 'unlimited' value
    step = got[("88", "batch")]
    assert (step.mem_current_bytes, step.mem_peak_bytes) == (366936064, 400793600)
    assert step.mem_limit_bytes == 999997440  # the step has no limit of its own: the job's applies


def test_kernel_without_memory_peak_keeps_the_running_maximum(tmp_path: Path) -> None:
    root = copy("v2_no_memory_peak", tmp_path)
    current = root / SCOPE / "job_77/memory.current"
    sampler = Sampler(root)
    seen = []
    for value in (2017017856, 3000000000, 1500000000):
        current.write_text(f"{value}\n")
        seen.append(rows(sampler)[("77", "")].mem_peak_bytes)
    assert seen == [2017017856, 3000000000, 3000000000]


def test_memory_max_max_means_the_parents_limit_or_unlimited() -> None:
    got = rows(Sampler(SCENARIOS / "v2_memory_max"))
    assert got[("77", "")].mem_limit_bytes == 8589934592
    assert got[("77", "0")].mem_limit_bytes == 8589934592  # step reads 'max': the job's limit
    assert math.isinf(got[("78", "")].mem_limit_bytes)
    assert math.isinf(got[("78", "0")].mem_limit_bytes)


def test_without_io_and_pids_controllers_they_are_not_measured_not_zero() -> None:
    got = rows(Sampler(SCENARIOS / "v2_no_io_pids"))
    for reading in got.values():
        assert math.isnan(reading.io_read_bytes) and math.isnan(reading.io_write_bytes)
        assert math.isnan(reading.pids)
    assert got[("77", "")].mem_current_bytes == 2017017856
    assert got[("77", "")].cpu_user_seconds == 6.513926


def test_a_job_deleted_between_listing_and_reading_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy("v2_multi_slurmd", tmp_path)
    real_walk = discovery.Walker.walk

    def walk_then_job_ends(
        self: discovery.Walker, *args: object, **kwargs: object
    ) -> dict[str, discovery.FoundJob]:
        found = real_walk(self, *args, **kwargs)  # type: ignore[arg-type]
        shutil.rmtree(root / "system.slice/node2_slurmstepd.scope/job_102", ignore_errors=True)
        return found

    monkeypatch.setattr(discovery.Walker, "walk", walk_then_job_ends)
    sampler = Sampler(root)
    got = rows(sampler)
    assert {key[0] for key in got} == {"101"}
    assert got[("101", "")].mem_current_bytes == 2017017856
    assert all(key[0] == "101" for key in sampler._readers)


def test_a_job_that_ended_has_its_files_closed(tmp_path: Path) -> None:
    root = copy("v2_multi_slurmd", tmp_path)
    sampler = Sampler(root)
    rows(sampler)
    fds = [
        fd for key, reader in sampler._readers.items() if key[0] == "102" for fd in reader.files.fds.values()
    ]
    assert len(fds) == 3 * 7  # job + two steps, seven files each
    shutil.rmtree(root / "system.slice/node2_slurmstepd.scope/job_102")
    assert {key[0] for key in rows(sampler)} == {"101"}
    assert not [key for key in sampler._readers if key[0] == "102"]  # no reader (nor its rate state) kept
    for fd in fds:
        with pytest.raises(OSError):
            import os

            os.fstat(fd)


def test_a_step_that_starts_later_is_found_on_the_next_tick(tmp_path: Path) -> None:
    root = copy("v2_job_id", tmp_path)
    sampler = Sampler(root)
    assert {key[1] for key in rows(sampler)} == {"", "0", "extern"}
    job = root / SCOPE / "job_77"
    shutil.copytree(job / "step_0", job / "step_1")
    assert {key[1] for key in rows(sampler)} == {"", "0", "1", "extern"}
    shutil.rmtree(job / "step_0")  # step 0 ends and step 2 starts within one tick: same link count
    shutil.copytree(job / "step_1", job / "step_2")
    assert {key[1] for key in rows(sampler)} == {"", "1", "2", "extern"}


def test_out_of_file_descriptors_still_reads_every_job(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    sampler = Sampler(SCENARIOS / "v2_multi_slurmd")
    try:
        used = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 10, hard))  # room for about one cgroup
        got = rows(sampler)
        assert {key[0] for key in got} == {"101", "102"} and len(got) == 6
        assert got[("102", "")].cpu_user_seconds == 120.0
    finally:
        sampler.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
