"""Test support: start real collector/agent processes on loopback and talk to them."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
T = TypeVar("T")


def unique_job_id() -> int:
    """A job id no other test run on this machine uses now: exec cgroups are machine-wide."""
    return 1_000_000 + (os.getpid() % 100_000) * 100 + next(_job_counter)


_job_counter = iter(range(100))


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Collector:
    proc: subprocess.Popen[bytes]
    state: Path
    http_port: int
    grpc_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    admin_password: str = ""
    _token: str = ""

    def login(self, username: str = "admin", password: str | None = None) -> str:
        response = httpx.post(
            self.url + "/api/login",
            json={"Username": username, "Password": password or self.admin_password},
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def get(self, path: str, auth: bool = True, **kwargs: Any) -> httpx.Response:
        """GET as the admin (logged in once), or anonymously with auth=False."""
        headers = kwargs.pop("headers", {})
        if auth:
            if not self._token:
                self._token = self.login()
            headers.setdefault("Authorization", f"Bearer {self._token}")
        return httpx.get(self.url + path, timeout=10, headers=headers, **kwargs)


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def start_collector(
    state: Path, *extra: str, env: dict[str, str] | None = None, grpc_port: int = 0
) -> Collector:
    state.mkdir(parents=True, exist_ok=True)
    ready = state / "ready.json"
    ready.unlink(missing_ok=True)
    log = state / "collector.log"
    env = {"JOBPULSE_ADMIN_PASSWORD": secrets.token_urlsafe(12), **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobpulse.collector.cli",
            "serve",
            "--state-dir",
            str(state),
            "--http-port",
            "0",
            "--grpc-listen",
            f"127.0.0.1:{grpc_port}",
            "--ready-file",
            str(ready),
            # never the host's /etc/jobpulse/collector.toml (a node with jobpulse installed, or the
            # package test installing one meanwhile): defaults, then what the test passes
            "--config",
            str(state / "no-config.toml"),
            *extra,
        ],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    # Not just exists(): the file is created before its JSON is written.
    wait_for(lambda: _has_content(ready) or proc.poll() is not None, 30, "collector to listen")
    if proc.poll() is not None:
        raise AssertionError(f"collector exited {proc.returncode}: {log.read_text()[-3000:]}")
    ports = json.loads(ready.read_text())
    return Collector(proc, state, ports["http_port"], ports["grpc_port"], log, env["JOBPULSE_ADMIN_PASSWORD"])


def start_agent(
    state: Path, collector: str, *extra: str, tick: float = 0.5, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    state.mkdir(parents=True, exist_ok=True)
    sock = state / "agent.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobpulse.agent.cli",
            "run",
            "--state-dir",
            str(state),
            "--socket",
            str(sock),
            "--collector",
            collector,
            "--tick",
            str(tick),
            "--config",
            str(state / "no-config.toml"),  # never the host's /etc/jobpulse/agent.toml
            *extra,
        ],
        stdout=open(state / "agent.log", "ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    wait_for(lambda: sock.exists() or proc.poll() is not None, 30, "agent socket")
    if proc.poll() is not None:
        raise AssertionError(f"agent exited {proc.returncode}: {(state / 'agent.log').read_text()[-3000:]}")
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(procs):
            stop(proc)


def cgroup_v1_writable(root: Path = Path("/sys/fs/cgroup")) -> str | None:
    """None if this process can create job cgroups under ``root``, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    probe = root / "cpuacct" / "jobpulse-probe"
    if (root / "cgroup.controllers").exists():
        probe = root / "jobpulse-probe"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError as exc:
        return f"cgroup hierarchy at {root} not writable: {exc}"
    return None


def parse_slurm_duration(text: str) -> float:
    """[DD-][HH:]MM:SS[.mmm] as sacct prints TotalCPU."""
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
    parts = [float(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def raw_series(doc: dict[str, Any], guid: str) -> list[float]:
    """Full-resolution values of one metric from a GET /api/job/{id}?raw=true answer, all nodes."""
    return [
        p["_value"]
        for m in doc["MetricData"]
        if m["Config"]["GUID"] == guid
        for points in m["Data"].values()
        for p in points
    ]


def raw_cpu_seconds(doc: dict[str, Any]) -> float:
    """The job's CPU-seconds counter (user + system) at its last sample."""
    pairs = zip(raw_series(doc, "cpu_user_seconds"), raw_series(doc, "cpu_system_seconds"), strict=True)
    return max(u + s for u, s in pairs)


def run_hook(kind: str, state: Path, env: dict[str, str]) -> float:
    """The real hook command as slurmd runs it (the job in its environment, output unread); its wall
    time in seconds. A hook must always exit 0: anything else fails the test with its stderr."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobpulse.agent.cli",
            kind,
            "--state-dir",
            str(state),
            "--socket",
            str(state / "agent.sock"),
        ],
        env={"PATH": os.environ["PATH"], "JOBPULSE_AGENT_CONFIG": os.environ["JOBPULSE_AGENT_CONFIG"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return took


@contextmanager
def v1_node_tops(prefix: str, controllers: tuple[str, ...]) -> Iterator[list[Path]]:
    """A node's own cgroup v1 roots, as a multiple-slurmd slurmd makes them: ``<controller>/slurm_<node>/uid_0``
    for each controller (a node name unique to this process), removed with every job left below them."""
    root = Path("/sys/fs/cgroup")
    tops = [root / controller / f"slurm_{prefix}{os.getpid()}" for controller in controllers]
    for top in tops:
        (top / "uid_0").mkdir(parents=True)
    try:
        yield tops
    finally:
        for top in tops:
            for job in (top / "uid_0").glob("job_*"):
                subprocess.run(["find", str(job), "-depth", "-type", "d", "-delete"], check=False)
            (top / "uid_0").rmdir()
            top.rmdir()


@contextmanager
def small_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (e.g. "2m") that really fills up; skips where it cannot be mounted
    (not root, no mount permission)."""
    import pytest

    mount.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount)], check=False
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@contextmanager
def descriptors_past_1024() -> Iterator[None]:
    """Hold open descriptors so that the next ones the process opens are numbered past 1024: what an
    agent holds on a node running a few hundred jobs (the v1 OOM watch keeps two per job), and what
    select(2) cannot wait on."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    held: list[int] = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
