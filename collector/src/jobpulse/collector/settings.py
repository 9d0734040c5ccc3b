"""Collector settings: defaults, /etc/jobpulse/collector.toml, then JOBPULSE_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jobpulse.common import config

DEFAULT_CONFIG_PATH = Path("/etc/jobpulse/collector.toml")


@dataclass
class HttpSettings:
    """Cross-cutting HTTP behaviour (TOML section ``[http]``, environment ``JOBPULSE_HTTP_*``)."""

    # Requests per minute per client address; 0 turns the limit off (e.g. behind a proxy that limits).
    rate_limit_per_minute: int = 1200
    # Stricter limit on password guessing and unauthenticated writes (login, role requests, OIDC).
    login_rate_limit_per_minute: int = 20
    # Origins allowed to call the API from a browser (CORS); empty: CORS off (same origin only).
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = 1024 * 1024  # larger request bodies answer 413
    gzip_min_bytes: int = 1024  # responses at least this big are gzip-compressed when the client accepts it
    livelog_lines: int = 1000  # log lines kept in memory for WS /api/admin/livelog


@dataclass
class OidcSettings:
    """OpenID Connect login (TOML section ``[oidc]``, environment ``JOBPULSE_OIDC_*``); off until set."""

    issuer: str = ""  # e.g. https://login.example.org/realms/hpc (discovery: <issuer>/.well-known/...)
    discovery_url: str = ""  # overrides <issuer>/.well-known/openid-configuration
    client_id: str = ""
    client_secret: str = ""
    redirect_url: str = ""  # https://jobpulse.example.org/auth/oauth/callback
    after_login_url: str = "/"  # where the browser goes once logged in (the front page)
    scopes: str = "openid email profile"
    username_claim: str = "preferred_username"
    roles_claim: str = "groups"  # claim holding the IdP's groups/roles, mapped through role_map
    role_map: dict[str, str] = field(default_factory=dict)  # IdP group -> jobpulse role
    default_roles: list[str] = field(default_factory=lambda: ["user"])  # for users no mapping matched

    @property
    def enabled(self) -> bool:
        return bool((self.issuer or self.discovery_url) and self.client_id and self.redirect_url)

    @property
    def metadata_url(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


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
    # gRPC off loopback needs `token` or `tls_ca`; true lets anyone who reaches the port send data (warned at start)
    allow_unauthenticated_ingest: bool = False
    node_down_after: float = 60.0  # seconds of silence after which a node counts as down
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
    # Storage (docs/storage.md). Retention in days per resolution; 0 keeps that resolution forever.
    retention_raw_days: float = 14.0
    retention_1m_days: float = 90.0
    retention_1h_days: float = 0.0
    rollup_interval: float = 60.0  # seconds between rollup passes
    rollup_lag: float = 60.0  # a minute is rolled up this many seconds after it ended (late batches)
    retention_interval: float = 3600.0
    summary_interval: float = 30.0  # seconds between passes that summarize finished jobs
    summary_delay: float = 60.0  # wait this long after a job stops (last batches of its nodes)
    checkpoint_interval: float = 300.0  # WAL checkpoint
    optimize_interval: float = 21600.0  # PRAGMA optimize
    # Efficiency findings (collector/findings.py): each rule tags the job when its threshold is crossed.
    finding_min_duration: float = (
        300.0  # seconds; shorter jobs get no efficiency findings but short_many_nodes
    )
    finding_gpu_idle_percent: float = 5.0  # a GPU whose mean utilization is below this is idle
    finding_cpu_efficiency_min: float = 0.25  # used / allocated core-seconds
    finding_mem_used_fraction_min: float = 0.25  # peak memory / requested memory
    finding_mem_near_limit_fraction: float = 0.95  # peak memory / memory limit
    finding_short_job: float = 300.0  # seconds
    finding_many_nodes: int = 8
    # Slurm reconciler: "auto" (on when squeue is in PATH), "on" or "off"
    reconcile: str = "auto"
    reconcile_interval: float = 60.0
    reconcile_lookback: float = 86400.0
    http: HttpSettings = field(default_factory=HttpSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)

    @property
    def database_path(self) -> Path:
        return Path(self.database) if self.database else self.state_dir / "jobpulse.db"


def load_settings(path: Path | None = None, **overrides: object) -> CollectorSettings:
    return config.load(CollectorSettings, path or DEFAULT_CONFIG_PATH, overrides=dict(overrides))
