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
    default_tick: float = 10.0
    log_level: str = "INFO"

    @property
    def database_path(self) -> Path:
        return Path(self.database) if self.database else self.state_dir / "jobpulse.db"


def load_settings(path: Path | None = None, **overrides: object) -> CollectorSettings:
    return config.load(CollectorSettings, path or DEFAULT_CONFIG_PATH, overrides=dict(overrides))
