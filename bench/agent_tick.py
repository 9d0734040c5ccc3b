"""Agent CPU cost per job per tick, against the pread floor measured in the same run; node cost; daemon RSS.

Usage (as root on a node with a writable cgroup hierarchy, or --tree fixture anywhere):

    scripts/dev.sh run python bench/agent_tick.py [--tree real|fixture] [--jobs 64] [--ticks 300]
        [--rss-duration 600] [--rss-tick 1.0]

- tick: ``Sampler.tick`` + serializing the Batch (discovery walk, one pread per open
  file, parsing, rates, columnar encoding), CPU time (user+system, ``time.process_time``) per job per tick.
- floor: the very files the sampler holds open, re-read with ``os.pread(fd, 65536, 0)``
  in a tight loop, the same number of times. ratio = tick / floor (goal <= 2.0, and a
  64-job tick <= 1.5 ms of CPU).
- for reference: open/read/close of the same paths each time.
- node: ``NodeSource.sample()`` (psutil) encoded into a NodeSample, CPU per call, separately;
  then the tick again with the node sample in its Batch, as the daemon ticks.
- RSS: real ``jobpulse-agent run`` daemons streaming to a real collector on loopback,
  sampling the same 64 jobs every --rss-tick seconds for --rss-duration seconds
  (goal <= 40 MB): one with the ``Environment=`` of systemd/jobpulse-agent.service (the
  daemon as installed), one without. --rss-duration 0 skips it.

The real tree is 64 v1 (or v2) Slurm-shaped jobs, each with step_batch and step_0, under a
unique ``slurm_jpbench<pid>`` directory, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from jobpulse.agent import discovery
from jobpulse.agent.sampler import Sampler
from jobpulse.agent.sources.node import NodeSource
from jobpulse.agent.wire import encode_node
from jobpulse.proto.v1 import ingest_pb2 as pb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpuacct", "memory", "cpuset", "blkio", "pids")
ALL_STEPS = ("step_batch", "step_0")


def build_real_tree(jobs: int, steps: int = 2) -> tuple[Path, list[Path], int]:
    """64 empty Slurm-shaped job cgroups (job + two steps); returns (root, dirs to remove, first job id)."""
    first = 7_000_000 + (os.getpid() % 10_000) * 100
    created: list[Path] = []
    if discovery.is_unified(ROOT):
        tops = [ROOT / "system.slice" / f"jpbench{os.getpid()}_slurmstepd.scope"]
        rel = ""
    else:
        tops = [ROOT / c / f"slurm_jpbench{os.getpid()}" for c in V1_CONTROLLERS if (ROOT / c).is_dir()]
        rel = "uid_0"

    def mkdir(path: Path) -> None:
        path.mkdir()
        created.append(path)
        if path.is_relative_to(ROOT / "cpuset"):
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (path / knob).write_text((path.parent / knob).read_text())

    for top in tops:
        mkdir(top)
        base = top / rel if rel else top
        if rel:
            mkdir(base)
        for n in range(jobs):
            job = base / f"job_{first + n}"
            mkdir(job)
            for step in ALL_STEPS[:steps]:
                mkdir(job / step)
    return ROOT, created, first


def build_fixture_tree(jobs: int, steps: int = 2) -> tuple[Path, list[Path], int]:
    """Regular files copied from the real H200 capture (cheaper than cgroupfs; a lower bound)."""
    scratch = Path(tempfile.mkdtemp(prefix="jpbench"))
    src = HERE.parent / "tests/fixtures/scenarios/v2_job_id"
    shutil.copy(src / "cgroup.controllers", scratch / "cgroup.controllers")
    scope = scratch / "system.slice/slurmstepd.scope"
    for n in range(jobs):
        job = scope / f"job_{1000 + n}"
        shutil.copytree(src / "system.slice/slurmstepd.scope/job_77", job)
        for extra in ("step_0", "step_extern")[steps:]:
            shutil.rmtree(job / extra)
    return scratch, [scratch], 1000


def cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def measure(root: Path, jobs: int, ticks: int) -> None:
    sampler = Sampler(root)
    wanted_prefix: set[str] = set()

    def tick() -> None:
        sampler.tick().SerializeToString()

    tick()
    tick()
    wanted_prefix = {key[0] for key in sampler._readers}
    fds = [fd for reader in sampler._readers.values() for fd in reader.files.fds.values()]
    paths = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
    measured_jobs = len(wanted_prefix)
    print(f"jobs found: {measured_jobs} (readers {len(sampler._readers)}, open files {len(fds)})")

    def floor() -> None:
        for fd in fds:
            os.pread(fd, 65536, 0)

    def open_read_close() -> None:
        for path in paths:
            try:
                with open(path, "rb") as handle:
                    handle.read()
            except OSError:
                pass

    results = []
    for _ in range(3):  # median of three rounds: the machine is shared
        results.append(
            (cpu_per_call(tick, ticks), cpu_per_call(floor, ticks), cpu_per_call(open_read_close, ticks))
        )
    results.sort()
    agent, base, orc = results[1]
    per_job = agent / measured_jobs * 1e6
    per_job_floor = base / measured_jobs * 1e6
    steps = len(sampler._readers) / measured_jobs - 1
    print(
        f"agent tick:        {agent * 1e3:.3f} ms CPU per tick, {per_job:.1f} us per job (incl. {steps:g} steps)"
    )
    print(f"floor (pread):     {base * 1e3:.3f} ms CPU per tick, {per_job_floor:.1f} us per job")
    print(f"open/read/close:   {orc * 1e3:.3f} ms CPU per tick, {orc / measured_jobs * 1e6:.1f} us per job")
    print(f"ratio agent/floor: {agent / base:.2f}  (goal <= 2.0; goal tick <= 1.5 ms for 64 jobs)")
    node = NodeSource()

    def node_sample() -> None:
        encode_node(node.sample(), pb.NodeSample())

    node_cost = sorted(cpu_per_call(node_sample, max(20, ticks // 10)) for _ in range(3))[1]
    print(f"node sample:       {node_cost * 1e3:.3f} ms CPU per sample (psutil, with filesystems, encoded)")
    sampler.node_source = node  # the daemon's tick: the jobs and the node, in one Batch
    with_node = sorted(cpu_per_call(tick, max(20, ticks // 3)) for _ in range(3))[1]
    print(f"tick with node:    {with_node * 1e3:.3f} ms CPU per tick (jobs + node sample, serialized)")
    sampler.close()


def unit_environment() -> dict[str, str]:
    """The ``Environment=`` settings of systemd/jobpulse-agent.service: the daemon as installed."""
    unit = HERE.parent / "systemd" / "jobpulse-agent.service"
    env = {}
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value
    return env


def measure_rss(duration: float, tick: float) -> None:
    """Two daemons side by side: as the systemd unit runs it (its Environment=) and with none of it."""
    import support

    state = Path(tempfile.mkdtemp(prefix="jpbench-rss"))
    collector = support.start_collector(state / "collector")
    unit_env = unit_environment()
    bare_env = {key: "" for key in unit_env}  # set but empty: the defaults
    agents = {
        "unit env": support.start_agent(state / "agent-unit", collector.grpc_target, tick=tick, env=unit_env),
        "no env": support.start_agent(state / "agent-bare", collector.grpc_target, tick=tick, env=bare_env),
    }
    procs = {name: psutil.Process(agent.pid) for name, agent in agents.items()}
    print(f"  unit env: {' '.join(f'{k}={v}' for k, v in unit_env.items())}")
    try:
        start = time.monotonic()
        while time.monotonic() - start < duration:
            time.sleep(min(30.0, duration))
            elapsed = time.monotonic() - start
            figures = ", ".join(f"{name} {p.memory_info().rss / 1e6:.1f} MB" for name, p in procs.items())
            print(f"  agent RSS after {elapsed:5.0f} s: {figures}", flush=True)
        baseline = subprocess.run(
            [
                sys.executable,
                "-c",
                "import psutil, grpc, google.protobuf, resource; print(resource.getrusage(0).ru_maxrss)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        base_mb = int(baseline.stdout) / 1e3
        for name, proc in procs.items():
            rss = proc.memory_info().rss / 1e6
            print(
                f"daemon RSS ({name}) after {duration:.0f} s at tick {tick}s: {rss:.1f} MB "
                f"(bare python+psutil+grpc+protobuf: {base_mb:.1f} MB, ratio {rss / base_mb:.2f}; goal <= 40 MB)"
            )
    finally:
        for agent in agents.values():
            support.stop(agent)
        support.stop(collector.proc)
        shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    real_ok = os.geteuid() == 0 and os.access(ROOT, os.W_OK)
    parser.add_argument("--tree", choices=("real", "fixture"), default="real" if real_ok else "fixture")
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument(
        "--steps", type=int, default=2, choices=(0, 1, 2), help="step cgroups per job (default 2)"
    )
    parser.add_argument("--rss-duration", type=float, default=600.0, help="seconds (default 600 = 10 min)")
    parser.add_argument("--rss-tick", type=float, default=1.0, help="agent tick during the RSS run")
    args = parser.parse_args()
    build = build_real_tree if args.tree == "real" else build_fixture_tree
    root, created, _ = build(args.jobs, args.steps)
    print(
        f"tree: {args.tree}, {args.jobs} jobs with {args.steps} step(s) each under {root}, cgroup v{'2' if discovery.is_unified(root) else '1'}"
    )
    try:
        measure(root, args.jobs, args.ticks)
        if args.rss_duration > 0:
            if args.tree != "real":
                print("RSS run skipped: the daemon walks the real /sys/fs/cgroup (use --tree real)")
            else:
                measure_rss(args.rss_duration, args.rss_tick)
    finally:
        for path in reversed(created):
            if path.is_relative_to(ROOT):
                for _ in range(20):
                    try:
                        path.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)
            else:
                shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
