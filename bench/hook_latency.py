"""Wall time of `jobpulse-agent prolog` (paid on every job start), against a bare interpreter start.

Three cases: agent absent (the event is spooled), a real agent answering, and a socket that accepts
but never answers (the hook must give up and spool within 2 s). Prints the medians and the ratio to
`python -c pass` measured in the same run.

    scripts/dev.sh run python bench/hook_latency.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from support import start_agent, start_collector, stop  # noqa: E402


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def median(args: list[str], env: dict[str, str], runs: int) -> float:
    return statistics.median(timed(args, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    env = {
        "PATH": os.environ["PATH"],
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_USER": "alice",
        "SLURM_NODELIST": "n1",
    }
    baseline = median([sys.executable, "-c", "pass"], env, runs)
    print(f"baseline python -c pass: {baseline * 1000:.0f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)

        def hook(sock: Path) -> list[str]:
            return [
                sys.executable,
                "-m",
                "jobpulse.agent.cli",
                "prolog",
                "--state-dir",
                str(state),
                "--socket",
                str(sock),
            ]

        absent = median(hook(state / "none.sock"), env, runs)
        print(f"prolog, agent absent (spooled): {absent * 1000:.0f} ms = {absent / baseline:.1f}x baseline")
        collector = start_collector(state / "collector")
        agent = start_agent(state / "agent", collector.grpc_target)
        try:
            live = median(hook(state / "agent" / "agent.sock"), env, runs)
            print(f"prolog, agent answering: {live * 1000:.0f} ms = {live / baseline:.1f}x baseline")
        finally:
            stop(agent)
            stop(collector.proc)
        with socket.socket(socket.AF_UNIX) as hung:
            hung.bind(str(state / "hung.sock"))
            hung.listen(64)
            stuck = median(hook(state / "hung.sock"), env, max(3, runs // 5))
        print(
            f"prolog, socket never answers: {stuck * 1000:.0f} ms = {stuck / baseline:.1f}x baseline (limit 2000 ms)"
        )


if __name__ == "__main__":
    main()
