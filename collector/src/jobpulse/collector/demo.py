"""`jobpulse demo`: a collector, an agent and a real sample job, wired together on loopback.

Everything runs as separate real processes, exactly as deployed, with state in
a temporary directory and the embedded SQLite database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from jobpulse.common.units import human_bytes

# About 2 CPU-seconds of work (the loop runs until the process has used 2 s of CPU)
# while holding 256 MiB of touched memory.
WORKLOAD = """
import time
block = bytearray(b"x") * (256 * 1024 * 1024)
while time.process_time() < 2.0:
    pass
time.sleep(1.5)
print("demo job: burned", round(time.process_time(), 2), "CPU-seconds holding", len(block) >> 20, "MiB")
"""


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if it can be bound, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


def _module_cmd(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def run_demo(duration: float | None, http_port: int, grpc_port: int, keep: bool = False) -> int:
    state = Path(tempfile.mkdtemp(prefix="jobpulse-demo-"))
    http_port = free_port(http_port)
    grpc_port = free_port(grpc_port)
    procs: list[subprocess.Popen[bytes]] = []
    password = secrets.token_urlsafe(12)
    env = {**os.environ, "JOBPULSE_ADMIN_PASSWORD": password}
    log = open(state / "daemons.log", "ab")  # noqa: SIM115 - lives as long as the daemons
    try:
        procs.append(
            subprocess.Popen(
                [
                    *_module_cmd("jobpulse.collector.cli"),
                    "serve",
                    "--state-dir",
                    str(state / "collector"),
                    "--http-port",
                    str(http_port),
                    "--grpc-listen",
                    f"127.0.0.1:{grpc_port}",
                    "--ready-file",
                    str(state / "collector.ready"),
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        )
        _wait_for(
            lambda: (state / "collector.ready").exists() or procs[0].poll() is not None, 30, "the collector"
        )
        if procs[0].poll() is not None:
            raise RuntimeError(f"collector exited; see {state / 'daemons.log'}")
        agent_args = ["--state-dir", str(state / "agent"), "--socket", str(state / "agent.sock")]
        procs.append(
            subprocess.Popen(
                [
                    *_module_cmd("jobpulse.agent.cli"),
                    "run",
                    *agent_args,
                    "--collector",
                    f"127.0.0.1:{grpc_port}",
                    "--tick",
                    "1",
                    "--cluster",
                    "demo",
                ],
                stdout=log,
                stderr=log,
            )
        )
        _wait_for(lambda: (state / "agent.sock").exists() or procs[1].poll() is not None, 30, "the agent")
        if procs[1].poll() is not None:
            raise RuntimeError(f"agent exited; see {state / 'daemons.log'}")
        api = f"http://127.0.0.1:{http_port}"
        print(f"jobpulse demo: collector on {api} (gRPC 127.0.0.1:{grpc_port}), agent ticking every 1 s")
        print(f"  state and logs in {state}")
        print("  running a sample job (job 1): ~2 CPU-seconds of work holding 256 MiB ...", flush=True)
        job = subprocess.run(
            [
                *_module_cmd("jobpulse.agent.cli"),
                "exec",
                *agent_args,
                "--job-id",
                "1",
                "--name",
                "demo-burn",
                "--",
                sys.executable,
                "-c",
                WORKLOAD,
            ],
            stderr=log,
            check=False,
        )

        login = httpx.post(f"{api}/api/login", json={"Username": "admin", "Password": password}, timeout=10)
        login.raise_for_status()
        bearer = {"Authorization": f"Bearer {login.json()['token']}"}

        def finished() -> dict[str, Any] | None:
            with contextlib.suppress(httpx.HTTPError):
                doc: dict[str, Any] = httpx.get(f"{api}/api/job/1?raw=true", headers=bearer, timeout=5).json()
                if doc.get("Metadata", {}).get("IsRunning") is False:
                    return doc
            return None

        doc = _wait_for(finished, 15, "the job's record")
        series = {
            m["Config"]["GUID"]: [p["_value"] for points in m["Data"].values() for p in points]
            for m in doc["MetricData"]
        }
        cpu = [
            u + s
            for u, s in zip(
                series.get("cpu_user_seconds", []), series.get("cpu_system_seconds", []), strict=False
            )
        ]
        print(f"\nJob 1 ({doc['Metadata']['JobName']}) exit code {job.returncode}, measured by jobpulse:")
        print(f"  CPU-seconds: {max(cpu, default=0.0):.2f}")
        print(f"  peak memory: {human_bytes(max(series.get('mem_peak_bytes', []), default=0.0))}")
        print(f"  samples:     {len(series.get('cpu_user_seconds', []))}")
        print(f"\nOpen {api}/ in a browser and sign in as admin / {password} to see job 1's page.")
        print(
            f"  JOBPULSE_URL={api} jobpulse report 1    its report in the terminal (with JOBPULSE_TOKEN or an API key)"
        )
        print("\nThe API (POST /api/login sets a session cookie and returns a bearer token):")
        print(f'  curl -s {api}/api/login -d \'{{"Username":"admin","Password":"{password}"}}\'')
        print(f"  {api}/api/jobs            jobs")
        print(f"  {api}/api/job/1           job 1: metrics per node (?raw=true, ?format=csv)")
        print(f"  {api}/docs                API documentation (OpenAPI)")
        print(
            "  jobpulse-agent once --json --cgroup-root /sys/fs/cgroup    one sample of this node", flush=True
        )
        if duration is None:
            print("\nRunning until Ctrl-C.", flush=True)
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        else:
            time.sleep(duration)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"state kept in {state}")


if os.name != "posix":  # pragma: no cover
    raise SystemExit("jobpulse runs on Linux")
