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
    # Authentication
    admin_user: str = "admin"
    admin_password: str = ""  # empty: a one-time password is printed at first start
    jwt_secret: str = ""  # empty: generated once into <state_dir>/jwt-secret
    session_ttl: float = 8 * 3600.0
    ws_ticket_ttl: float = 60.0
    cookie_secure: bool = False  # set true behind HTTPS
    # JobMon's own front end reads its token from the cookie in JavaScript: only then set this true.
    cookie_js_readable: bool = False
    log_level: str = "INFO"
    # Slurm reconciler: "auto" (on when squeue is in PATH), "on" or "off"
    reconcile: str = "auto"
    reconcile_interval: float = 60.0
    reconcile_lookback: float = 86400.0

    @property
    def database_path(self) -> Path:
        return Path(self.database) if self.database else self.state_dir / "jobpulse.db"


def load_settings(path: Path | None = None, **overrides: object) -> CollectorSettings:
    return config.load(CollectorSettings, path or DEFAULT_CONFIG_PATH, overrides=dict(overrides))
