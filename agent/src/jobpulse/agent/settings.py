"""Agent settings: defaults, /etc/jobpulse/agent.toml, then JOBPULSE_* environment variables."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from jobpulse.common import config

DEFAULT_CONFIG_PATH = Path("/etc/jobpulse/agent.toml")


@dataclass
class AgentSettings:
    """Everything the agent can be told. Paths are settings so tests can point them at fixtures."""

    collector: str = "127.0.0.1:50051"
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    cluster: str = "default"
    tick: float = 10.0
    token: str = ""
    cgroup_root: Path = Path("/sys/fs/cgroup")
    proc_root: Path = Path("/proc")
    state_dir: Path = Path("/var/lib/jobpulse")
    socket: Path = Path("/run/jobpulse/agent.sock")
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_max_age: float = 7 * 86400.0
    log_level: str = "INFO"
    # NVML's expensive calls run every N ticks, not every tick (see README "Agent: what is measured").
    gpu_process_every: int = 6
    gpu_energy_every: int = 6
    gpus: bool = True  # False: never load NVML on this node

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def events_dir(self) -> Path:
        """Where prolog/epilog/exec drop events when the agent is not answering."""
        return self.state_dir / "events"


def load_settings(path: Path | None = None, **overrides: object) -> AgentSettings:
    return config.load(AgentSettings, path or DEFAULT_CONFIG_PATH, overrides=dict(overrides))
