"""jobpulse against sacct against the kernel, on real jobs of a real Slurm (issue 17).

Usage (as root, on a host where scripts/slurm-cluster.sh can run; about 2 minutes):

    scripts/dev.sh run python bench/fidelity.py [--nodes 1] [--tick 1.0]

It brings up a throwaway cluster with accounting (its own directory and node names), a collector (the
reconciler every 2 s) and one agent per node (``--tick``), with the packaged prolog/epilog calling this
checkout's agent; then runs a set of jobs (busy 2, 10 and 20 CPU-seconds; 300 MB for 10 s; ``exit 3``;
a ``scancel`` after 5 s) and prints a Markdown table per job:

- CPU-seconds: jobpulse (the job's last user + system sample), sacct's TotalCPU, and the kernel's:
  the job's ``cpuacct.usage`` read by this script as Slurm removes the job's last step (inotify on each
  job's directory, independently of the agent), the last moment the counter exists;
- peak memory: jobpulse's ``mem_peak_bytes``, the kernel's ``memory.max_usage_in_bytes`` read the same
  way, sacct's MaxRSS (largest over the steps) and jobpulse's largest ``mem_anon_bytes`` (its
  counterpart);
- start/stop: jobpulse's against sacct's Start/End; exit: ``ExitCodeString`` and State against sacct.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import (  # noqa: E402
    parse_slurm_duration,
    raw_cpu_seconds,
    raw_series,
    start_agent,
    start_collector,
    stop,
    wait_for,
)

CGROUP = "/sys/fs/cgroup"
_IN_CREATE, _IN_DELETE = 0x100, 0x200
BUSY = "python3 -c 'import time\nwhile time.process_time() < {0}: sum(range(100000))'"
JOBS: list[tuple[str, str, list[str]]] = [
    ("busy 2 s", BUSY.format(2), []),
    ("busy 10 s", BUSY.format(10), []),
    ("busy 20 s", BUSY.format(20), []),
    (
        "300 MB, 10 s",
        "python3 -c 'import time\nb = bytearray(300 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "time.sleep(10)'",
        ["--mem=600M"],
    ),
    ("exit 3", "sleep 1; exit 3", []),
    ("scancel after 5 s", "sleep 300", []),
]


class KernelWatch(threading.Thread):
    """The job level's counters read as each of its steps goes (the job's directory outlives them by
    some milliseconds): job id -> (CPU-seconds, peak memory bytes)."""

    def __init__(self, nodes: list[str]) -> None:
        super().__init__(daemon=True)
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(0)
        self.watches: dict[int, tuple[str, str]] = {}
        self.final: dict[str, tuple[float, float | None]] = {}
        for node in nodes:
            top = f"{CGROUP}/cpuacct/slurm_{node}"
            os.makedirs(top, exist_ok=True)  # slurmd makes it at its first job otherwise
            self._add(top, "top")

    def _add(self, path: str, kind: str) -> None:
        mask = _IN_CREATE if kind != "job" else _IN_DELETE
        wd = self.libc.inotify_add_watch(self.fd, path.encode(), mask)
        if wd >= 0:
            self.watches[wd] = (kind, path)
        if kind == "uid":
            for name in os.listdir(path):
                if name.startswith("job_"):
                    self._add(os.path.join(path, name), "job")

    def run(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 1.0)
            if not ready:
                continue
            data = os.read(self.fd, 65536)
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                kind, path = self.watches.get(wd, ("", ""))
                if kind == "top" and mask & _IN_CREATE and name.startswith("uid_"):
                    self._add(os.path.join(path, name), "uid")
                elif kind == "uid" and mask & _IN_CREATE and name.startswith("job_"):
                    self._add(os.path.join(path, name), "job")
                elif kind == "job" and mask & _IN_DELETE and name.startswith("step_"):
                    self._read(path)

    def _read(self, cpuacct_dir: str) -> None:
        try:
            usage = int(Path(cpuacct_dir, "cpuacct.usage").read_text()) / 1e9
        except OSError:
            return
        memory_dir = cpuacct_dir.replace("/cpuacct/", "/memory/", 1)
        try:
            peak: float | None = float(Path(memory_dir, "memory.max_usage_in_bytes").read_text())
        except OSError:
            peak = None
        self.final[os.path.basename(cpuacct_dir).removeprefix("job_")] = (usage, peak)


def size(text: str) -> float | None:
    if not text:
        return None
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def pct(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return ""
    return f"{100 * (value - reference) / reference:+.1f} %"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--tick", type=float, default=1.0)
    args = parser.parse_args()
    pid = os.getpid()
    directory = Path(f"/tmp/jobpulse-fidelity-{pid}")
    env = {
        **os.environ,
        "JOBPULSE_SLURM_DIR": str(directory),
        "JOBPULSE_SLURM_NODE_PREFIX": f"fid{pid % 100_000}n",
        "JOBPULSE_SLURM_FIRST_JOB_ID": str(8_000_000 + (pid % 100_000) * 10),
    }
    script = str(ROOT / "scripts" / "slurm-cluster.sh")
    subprocess.run(["bash", script, "start", "--nodes", str(args.nodes)], env=env, check=True)
    agents: list[subprocess.Popen[bytes]] = []
    collector = None
    try:
        for line in (directory / "cluster.env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        nodes = env["JOBPULSE_SLURM_NODES"].split(",")
        state = directory / "jobpulse"
        collector = start_collector(
            state / "collector",
            env={
                "SLURM_CONF": env["SLURM_CONF"],
                "JOBPULSE_RECONCILE": "on",
                "JOBPULSE_RECONCILE_INTERVAL": "2",
            },
        )
        for node in nodes:
            agents.append(
                start_agent(
                    state / "agents" / node,
                    collector.grpc_target,
                    "--cluster",
                    env["JOBPULSE_SLURM_CLUSTER"],
                    "--node",
                    node,
                    tick=args.tick,
                )
            )
        (directory / "etc" / "jobpulse-hook.env").write_text(
            f"JOBPULSE_AGENT={ROOT / '.venv' / 'bin' / 'jobpulse-agent'}\n"
            f"JOBPULSE_STATE_DIR={state}/agents/${{SLURMD_NODENAME}}\n"
            f"JOBPULSE_SOCKET={state}/agents/${{SLURMD_NODENAME}}/agent.sock\n"
        )
        kernel = KernelWatch(nodes)
        kernel.start()

        def sbatch(body: str, *options: str) -> int:
            out = subprocess.run(
                ["sbatch", "--parsable", "-o", "/dev/null", *options, "--wrap", body],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return int(out.strip().split(";")[0])

        submitted = [(name, sbatch(body, *options)) for name, body, options in JOBS]
        cancel = submitted[-1][1]
        wait_for(
            lambda: (
                f"{cancel}.batch|RUNNING"
                in subprocess.run(
                    ["sacct", "-n", "-P", "-o", "JobID,State", "-j", str(cancel)],
                    env=env,
                    capture_output=True,
                    text=True,
                ).stdout.split()
            ),
            120,
            "the job to cancel running",
        )
        time.sleep(5)
        subprocess.run(["scancel", str(cancel)], env=env, check=True)

        def doc(job: int) -> dict[str, Any] | None:
            response = collector.get(f"/api/job/{job}?raw=true")
            found = response.json() if response.status_code == 200 else None
            return found if found and not found["Metadata"]["IsRunning"] else None

        ended: dict[int, dict[str, Any]] = {}
        for _, job in submitted:
            found = wait_for(functools.partial(doc, job), 300, f"job {job} ended")
            assert found is not None
            ended[job] = found
        time.sleep(8)  # the reconciler's corrections (every 2 s) and the agents' last rows
        docs: dict[int, dict[str, Any]] = {job: doc(job) or ended[job] for job in ended}
        rows = []
        for name, job in submitted:
            meta = docs[job]["Metadata"]
            out = subprocess.run(
                ["sacct", "-n", "-P", "-o", "JobID,TotalCPU,MaxRSS,Start,End,State,ExitCode", "-j", str(job)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            lines = [line.split("|") for line in out.splitlines()]
            own = next(line for line in lines if line[0] == str(job))
            batch = next((line for line in lines if line[0] == f"{job}.batch"), own)
            maxrss = max((size(line[2]) or 0 for line in lines), default=0)
            k_cpu, k_peak = kernel.final.get(str(job), (None, None))
            cpu = raw_cpu_seconds(docs[job])
            peak = max(raw_series(docs[job], "mem_peak_bytes"), default=None)
            anon = max(raw_series(docs[job], "mem_anon_bytes"), default=None)

            def epoch(text: str) -> int:
                return int(datetime.fromisoformat(text).timestamp())

            slurm_exit = batch[6] if own[6] == "0:0" and batch[6] != "0:0" else own[6]
            rows.append(
                {
                    "job": name,
                    "cpu": cpu,
                    "sacct_cpu": parse_slurm_duration(own[1]),
                    "kernel_cpu": k_cpu,
                    "peak": peak,
                    "kernel_peak": k_peak,
                    "maxrss": maxrss,
                    "anon": anon,
                    "start": meta["StartTime"] - epoch(own[3]),
                    "stop": meta["StopTime"] - epoch(own[4]),
                    "exit": f"{meta['State']} {meta['ExitCodeString']}",
                    "sacct_exit": f"{own[5].split()[0]} {slurm_exit}",
                }
            )
        print(
            f"\n{len(rows)} jobs, tick {args.tick} s, {args.nodes} node(s), load {os.getloadavg()[0]:.1f}\n"
        )
        print(
            "| job | CPU-s jobpulse | sacct TotalCPU | kernel | vs sacct | vs kernel | peak jobpulse | kernel"
            " | sacct MaxRSS | anon peak | start / stop vs sacct | exit jobpulse | sacct |"
        )
        print("| --- " * 13 + "|")
        mb = 1 << 20

        def num(value: float | None, scale: float = 1.0, unit: str = "") -> str:
            return (
                ""
                if value is None
                else f"{value / scale:.3f}{unit}"
                if scale == 1.0
                else f"{value / scale:.1f}{unit}"
            )

        for r in rows:
            cells = [
                r["job"],
                num(r["cpu"]),
                num(r["sacct_cpu"]),
                num(r["kernel_cpu"]),
                pct(r["cpu"], r["sacct_cpu"]),
                pct(r["cpu"], r["kernel_cpu"]),
                num(r["peak"], mb, " MiB"),
                num(r["kernel_peak"], mb, " MiB"),
                num(r["maxrss"], mb, " MiB"),
                num(r["anon"], mb, " MiB"),
                f"{r['start']:+d} s / {r['stop']:+d} s",
                r["exit"],
                r["sacct_exit"],
            ]
            print("| " + " | ".join(cells) + " |")
        print(json.dumps(rows), file=sys.stderr)
        return 0
    finally:
        for agent in agents:
            stop(agent)
        if collector is not None:
            stop(collector.proc)
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, check=False)
        subprocess.run(["rm", "-rf", str(directory)], check=False)


if __name__ == "__main__":
    sys.exit(main())
