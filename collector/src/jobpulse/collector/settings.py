"""Collector settings: defaults, /etc/jobpulse/collector.toml, then JOBPULSE_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jobpulse.common import config

DEFAULT_CONFIG_PATH = Path("/etc/jobpulse/collector.toml")


@dataclass
class CollectorSettings:
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    grpc_listen: str = "127.0.0.1:50051"
    state_dir: Path = Path("/var/lib/jobpulse")
    database: str = ""  # default: <state_dir>/jobpulse.db
    token: str = ""  # agents must present it when set
    tls_cert: Path | None = None  # server certificate (PEM); with tls_key turns on TLS for gRPC
    tls_key: Path | None = None
    tls_ca: Path | None = None  # when set, agents must present a client certificate signed by it (mTLS)
    node_down_after: float = 60.0  # seconds of silence after which a node counts as down
    default_tick: float = 10.0
    log_level: str = "INFO"

    @property
    def database_path(self) -> Path:
        return Path(self.database) if self.database else self.state_dir / "jobpulse.db"


def load_settings(path: Path | None = None, **overrides: object) -> CollectorSettings:
    return config.load(CollectorSettings, path or DEFAULT_CONFIG_PATH, overrides=dict(overrides))
