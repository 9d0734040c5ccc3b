"""Agent settings: defaults, /etc/jobpulse/agent.toml, then JOBPULSE_* environment variables."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobpulse.common import config

if TYPE_CHECKING:
    from jobpulse.agent.stream import ClientTls

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
    spool_keep_acked: bool = False  # audit/testing: move acknowledged segments to <spool>/acked
    tls: bool = False  # TLS to the collector, verified against the system CAs unless tls_ca is set
    tls_ca: Path | None = None  # CA that signed the collector's certificate (implies tls)
    tls_cert: Path | None = None  # client certificate for mutual TLS (with tls_key)
    tls_key: Path | None = None
    log_level: str = "INFO"
    # NVML's expensive calls run every N ticks, not every tick (see README "Agent: what is measured").
    gpu_process_every: int = 6
    gpu_energy_every: int = 6
    gpus: bool = True  # False: never load NVML on this node

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    def client_tls(self) -> ClientTls | None:
        """None for a plaintext channel; a ClientTls when any TLS setting is given."""
        if not (self.tls or self.tls_ca or self.tls_cert or self.tls_key):
            return None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise config.ConfigError("tls_cert and tls_key must be given together")
        from jobpulse.agent.stream import ClientTls

        return ClientTls(ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key)

    @property
    def events_dir(self) -> Path:
        """Where prolog/epilog/exec drop events when the agent is not answering."""
        return self.state_dir / "events"


CONFIG_ENV = "JOBPULSE_AGENT_CONFIG"  # the config file when --config is not given (hooks: jobpulse-hook.env)


def load_settings(path: Path | None = None, **overrides: object) -> AgentSettings:
    """Settings from ``path``, else the file named by $JOBPULSE_AGENT_CONFIG, else /etc/jobpulse/agent.toml.
    The variable exists for the Slurm hooks, which get no arguments of their own (set it in
    jobpulse-hook.env), and for test runs that must never read the host's file."""
    named = os.environ.get(CONFIG_ENV)
    chosen = path or (Path(named) if named else DEFAULT_CONFIG_PATH)
    return config.load(AgentSettings, chosen, overrides=dict(overrides))
