"""The tick's fast path (block.py, sources/columns.py) answers exactly what the per-reader path answers.

Two samplers watch the same copy of each fixture tree while its counters move
between ticks; one is kept on the per-reader path. Every row must be equal,
rates and running peaks included, and the fast one must really have used its
blocks.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobpulse.agent import sampler as sampler_module
from jobpulse.agent.readers import Readers
from jobpulse.agent.sampler import Sampler
from jobpulse.agent.sources.base import Row
from jobpulse.agent.sources.cgroupfs import STATIC_EVERY
from support import FIXTURES

SCENARIOS = ["v1_uid", "v2_job_id", "v2_memory_max", "v2_multi_slurmd", "v2_no_io_pids", "v2_no_memory_peak"]
# (file name, key or None for a single-value file) -> added per tick
MOVES: dict[tuple[str, str | None], int] = {
    ("cpu.stat", "usage_usec"): 300_000,
    ("cpu.stat", "user_usec"): 250_000,
    ("cpu.stat", "system_usec"): 50_000,
    ("cpuacct.usage", None): 300_000_000,
    ("cpuacct.stat", "user"): 25,
    ("cpuacct.stat", "system"): 5,
    ("io.stat", "rbytes="): 4096,
}
# memory.current goes up, further up, then down: the running peak (no memory.peak) must follow.
MEMORY = {"memory.current": (0, 5_000_000, 1_000_000), "memory.usage_in_bytes": (0, 5_000_000, 1_000_000)}


def move(root: Path, tick: int, originals: dict[Path, str]) -> None:
    """Rewrite the tree's counters as they would read ``tick`` ticks later."""
    for path in root.rglob("*"):
        name = path.name
        if not path.is_file() or path.is_symlink():
            continue
        wanted = {key: step for (file, key), step in MOVES.items() if file == name}
        if not wanted and name not in MEMORY:
            continue
        text = originals.setdefault(path, path.read_text())
        if name in MEMORY:
            path.write_text(f"{int(text) + MEMORY[name][tick % 3]}\n")
            continue
        for key, step in wanted.items():
            if key is None:
                text = f"{int(text) + step * tick}\n"
            else:
                sep = "" if key.endswith("=") else " "
                text = re.sub(
                    rf"(^|\s){re.escape(key)}{sep}(\d+)",
                    lambda m, s=step, k=key, p=sep: f"{m[1]}{k}{p}{int(m[2]) + s * tick}",
                    text,
                )
        path.write_text(text)


def same(a: Row, b: Row) -> bool:
    return all(
        x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


@pytest.fixture
def fast_ticks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the ticks the blocks answered (not the per-reader path)."""
    count = [0]
    real = Readers._block_rows

    def counting(self: Readers, stamp: int, refresh: bool) -> list[Row] | None:
        rows = real(self, stamp, refresh)
        count[0] += rows is not None
        return rows

    monkeypatch.setattr(Readers, "_block_rows", counting)
    return count


def per_reader(sampler: Sampler) -> None:
    """Keep this sampler on the per-reader path for its next tick (its blocks are never built)."""
    sampler._pool._listed = None


def tick_both(
    fast: Sampler, slow: Sampler, clock: list[int], step: int = 10_000
) -> tuple[list[Row], list[Row]]:
    """One tick of each sampler at the same time, the second kept on the per-reader path."""
    clock[0] += step
    _, fast_rows = fast.rows()
    per_reader(slow)
    _, slow_rows = slow.rows()
    return fast_rows, slow_rows


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    now = [1_760_000_000_000]
    monkeypatch.setattr(sampler_module, "now_ms", lambda: now[0])
    yield now


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fast_path_rows_equal_the_per_reader_rows(
    scenario: str, tmp_path: Path, clock: list[int], fast_ticks: list[int]
) -> None:
    root = tmp_path / scenario
    shutil.copytree(FIXTURES / "scenarios" / scenario, root)
    fast, slow = Sampler(root), Sampler(root)
    originals: dict[Path, str] = {}
    try:
        for tick in range(6):
            move(root, tick, originals)
            fast_rows, slow_rows = tick_both(fast, slow, clock)
            got = {row[:2]: row for row in fast_rows}
            want = {row[:2]: row for row in slow_rows}
            assert got.keys() == want.keys() and want
            for key, row in want.items():
                assert same(got[key], row), (tick, key, got[key], row)
            if tick:
                cores = [row[4] for row in fast_rows]
                assert any(c == c and c > 0 for c in cores)  # rates really computed
    finally:
        fast.close()
        slow.close()
    assert fast_ticks[0] == 5  # every tick after the first went through the blocks


def test_a_job_that_ends_leaves_the_fast_path_and_is_dropped(
    tmp_path: Path, clock: list[int], fast_ticks: list[int]
) -> None:
    root = tmp_path / "v2"
    shutil.copytree(FIXTURES / "scenarios" / "v2_multi_slurmd", root)
    sampler = Sampler(root)
    try:
        clock[0] += 10_000
        _, first = sampler.rows()
        jobs = sorted({row[0] for row in first})
        clock[0] += 10_000
        sampler.rows()
        assert fast_ticks[0] == 1
        gone = next(p for p in root.rglob(f"job_{jobs[0]}") if p.is_dir())
        shutil.rmtree(gone)
        clock[0] += 10_000
        _, after = sampler.rows()
        assert jobs[0] not in {row[0] for row in after}
        assert {row[0] for row in after} == set(jobs[1:])
    finally:
        sampler.close()


def test_an_unexpected_file_format_gives_the_same_numbers(
    tmp_path: Path, clock: list[int], fast_ticks: list[int]
) -> None:
    """A kernel printing cpu.stat keys in another order: the column regex misses, the careful parser reads it."""
    root = tmp_path / "v2"
    shutil.copytree(FIXTURES / "scenarios" / "v2_job_id", root)
    fast, slow = Sampler(root), Sampler(root)
    try:
        for tick in range(3):
            if tick == 2:
                for stat in root.rglob("cpu.stat"):
                    lines = stat.read_text().splitlines()
                    stat.write_text("\n".join(reversed(lines)) + "\n")
            fast_rows, slow_rows = tick_both(fast, slow, clock)
        assert fast_ticks[0] == 2
        want = {row[:2]: row for row in slow_rows}
        assert all(same(row, want[row[:2]]) for row in fast_rows)
        assert want[("77", "")][2:4] == (6.513926, 3.439945)
    finally:
        fast.close()
        slow.close()


def test_a_file_that_outgrows_its_buffer_is_read_whole(
    tmp_path: Path, clock: list[int], fast_ticks: list[int]
) -> None:
    """io.stat gains 60 devices (~4.5 KB): the block's fitted buffer would cut it; the sums stay exact."""
    root = tmp_path / "v2"
    shutil.copytree(FIXTURES / "scenarios" / "v2_job_id", root)
    fast = Sampler(root)
    try:
        for tick in range(3):
            clock[0] += 10_000
            if tick == 2:
                for io in root.rglob("io.stat"):
                    lines = [
                        f"259:{i} rbytes={1000 + i} wbytes={2000 + i} rios=1 wios=1 dbytes=0 dios=0"
                        for i in range(60)
                    ]
                    io.write_text("\n".join(lines) + "\n")
            _, rows = fast.rows()
        assert fast_ticks[0] == 2  # ticks 1 and 2 went through the block
        job = next(row for row in rows if row[:2] == ("77", ""))
        assert (job[12], job[13]) == (sum(1000 + i for i in range(60)), sum(2000 + i for i in range(60)))
    finally:
        fast.close()


def test_one_job_read_alone_after_fast_ticks_has_the_right_rates(tmp_path: Path, clock: list[int]) -> None:
    """The epilog's final sample (``collect(only=job)``) after block ticks: rates against the last tick."""
    root = tmp_path / "v2"
    shutil.copytree(FIXTURES / "scenarios" / "v2_job_id", root)
    fast, slow = Sampler(root), Sampler(root)
    originals: dict[Path, str] = {}
    try:
        for tick in range(4):
            move(root, tick, originals)
            tick_both(fast, slow, clock)
        move(root, 4, originals)
        clock[0] += 5_000
        got = {(r.job_id, r.step): r for r in fast.collect(only="77")}
        want = {(r.job_id, r.step): r for r in slow.collect(only="77")}
        assert got == want
        assert got[("77", "")].cpu_cores == pytest.approx(0.3 / 5)  # 0.3 s of CPU in the last 5 s
    finally:
        fast.close()
        slow.close()


def test_a_cgroup_removed_under_the_blocks_is_read_as_gone(
    tmp_path: Path, clock: list[int], fast_ticks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On cgroupfs a removed cgroup's open files fail with ENODEV (regular files do not): the blocks
    give the tick to the per-reader path, which drops the step; the others keep exact rates."""
    root = tmp_path / "v2"
    shutil.copytree(FIXTURES / "scenarios" / "v2_job_id", root)
    fast, slow = Sampler(root), Sampler(root)
    originals: dict[Path, str] = {}
    try:
        for tick in range(3):
            move(root, tick, originals)
            tick_both(fast, slow, clock)
        removed = set(fast._readers[("77", "0")].files.slots)
        real_pread = os.pread

        def pread(fd: int, size: int, offset: int) -> bytes:
            if fd in removed:
                raise OSError(errno.ENODEV, "No such device")
            return real_pread(fd, size, offset)

        monkeypatch.setattr(os, "pread", pread)
        move(root, 3, originals)
        clock[0] += 10_000
        _, fast_rows = fast.rows()
        monkeypatch.setattr(os, "pread", real_pread)
        per_reader(slow)
        _, slow_rows = slow.rows()
        got = {row[:2]: row for row in fast_rows}
        assert set(got) == {("77", ""), ("77", "extern")}  # step 0 is gone, nothing failed
        want = {row[:2]: row for row in slow_rows}
        for key, row in got.items():
            assert same(row, want[key]) and row[4] > 0
        assert fast_ticks[0] == 2  # ticks 1 and 2; tick 3 was read cgroup by cgroup
    finally:
        fast.close()
        slow.close()


def test_limits_are_re_read_on_the_same_tick_by_both_paths(
    tmp_path: Path, clock: list[int], fast_ticks: list[int]
) -> None:
    """``scontrol update`` of a job's memory limit shows within STATIC_EVERY ticks, the same on both paths."""
    root = tmp_path / "v2"
    shutil.copytree(FIXTURES / "scenarios" / "v2_job_id", root)
    fast, slow = Sampler(root), Sampler(root)
    limit = root / "system.slice/slurmstepd.scope/job_77/memory.max"
    seen = []
    try:
        for tick in range(STATIC_EVERY + 2):
            if tick == 3:
                limit.write_text("8589934592\n")
            fast_rows, slow_rows = tick_both(fast, slow, clock)
            want = {row[:2]: row for row in slow_rows}
            assert all(same(row, want[row[:2]]) for row in fast_rows), tick
            seen.append(want[("77", "")][10])
    finally:
        fast.close()
        slow.close()
    assert math.isinf(seen[3]) and seen[-1] == 8589934592  # re-read at the STATIC_EVERY-th tick
    assert fast_ticks[0] == STATIC_EVERY + 1


def test_a_sluid_directory_waiting_for_its_job_id_keeps_the_fast_path(
    tmp_path: Path, clock: list[int], fast_ticks: list[int]
) -> None:
    """One SLUID job mapped (prolog state), one not yet: the mapped one is read through the blocks."""
    state = tmp_path / "state"
    (state / "jobs").mkdir(parents=True)
    (state / "jobs" / "77.json").write_text(json.dumps({"job_id": "77", "sluid": "s0B2CW5Q8JN4FD"}))
    sampler = Sampler(FIXTURES / "scenarios" / "v2_sluid", state_dir=state)
    try:
        for _ in range(4):
            clock[0] += 10_000
            _, rows = sampler.rows()
            assert {row[0] for row in rows} == {"77"}
    finally:
        sampler.close()
    assert fast_ticks[0] == 3
