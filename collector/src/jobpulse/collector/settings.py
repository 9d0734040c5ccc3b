"""Collector settings: defaults, /etc/jobpulse/collector.toml, then JOBPULSE_* environment variables.

Every number is range-checked and the structured strings (origins, proxy addresses, the gRPC address)
are parsed when the settings are loaded: a bad one stops the start with the setting's name, not a
traceback from ``bind()`` or the scheduler later.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from jobpulse.common import config
from jobpulse.common.config import Bounds, Check, OneOf

DEFAULT_CONFIG_PATH = Path("/etc/jobpulse/collector.toml")

_DAY = 86400.0
_TEN_YEARS = 3650 * _DAY
Port = Annotated[int, Bounds(ge=0, le=65535)]  # 0: any free port
Interval = Annotated[float, Bounds(gt=0, le=_TEN_YEARS)]  # seconds, positive
Delay = Annotated[float, Bounds(ge=0, le=_TEN_YEARS)]  # seconds, 0 allowed
Days = Annotated[float, Bounds(ge=0, le=36500)]  # retention; 0 keeps forever
Fraction = Annotated[float, Bounds(ge=0, le=1)]
Count = Annotated[int, Bounds(ge=0, le=2**31 - 1)]


class Origins(Check):
    """CORS origins as browsers send them: ``scheme://host[:port]`` (no path, no trailing slash), ``*``
    for any origin, or ``https://*.example.org`` for its subdomains (Litestar's wildcard)."""

    _LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    _ORIGIN = re.compile(
        rf"https?://(\[[0-9A-Fa-f:.]+\]|(\*\.)?{_LABEL}(\.{_LABEL})*)(:(?P<port>[0-9]{{1,5}}))?"
    )

    def __call__(self, value: Any) -> None:
        for origin in value:
            match = self._ORIGIN.fullmatch(origin)
            if origin != "*" and (match is None or int(match.group("port") or 1) > 65535):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port] (http or https, no path, "
                    'no trailing slash), or "*"'
                )


class Addresses(Check):
    """IP addresses or networks (``10.0.0.5``, ``fd00::1``, ``10.0.0.0/24``)."""

    def __call__(self, value: Any) -> None:
        for item in value:
            try:
                if "/" in item:
                    ipaddress.ip_network(item, strict=False)
                else:
                    ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None


class HostPort(Check):
    """``host:port`` with the port in 0..65535 (``[::1]:50051`` for IPv6)."""

    def __call__(self, value: Any) -> None:
        host, sep, port = str(value).rpartition(":")
        if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"{value!r} is not host:port with a port in [0, 65535]")


@dataclass
class HttpSettings:
    """Cross-cutting HTTP behaviour (TOML section ``[http]``, environment ``JOBPULSE_HTTP_*``)."""

    # Requests per minute per client address; 0 turns the limit off (e.g. behind a proxy that limits).
    rate_limit_per_minute: Count = 1200
    # Stricter limit on password guessing and unauthenticated writes (login, role requests, OIDC).
    login_rate_limit_per_minute: Count = 20
    # Origins allowed to call the API from a browser (CORS); empty: CORS off (same origin only).
    cors_origins: Annotated[list[str], Origins()] = field(default_factory=list)
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses or networks); empty: none, the
    # client is the TCP peer (rate limits, logs). Only list proxies that overwrite these headers.
    trusted_proxies: Annotated[list[str], Addresses()] = field(default_factory=list)
    max_body_bytes: Annotated[int, Bounds(ge=1024, le=2**31 - 1)] = 1024 * 1024  # larger bodies answer 413
    gzip_min_bytes: Count = 1024  # responses at least this big are gzip-compressed when the client accepts it
    livelog_lines: Annotated[int, Bounds(ge=0, le=1_000_000)] = (
        1000  # log lines kept for WS /api/admin/livelog
    )


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
    http_port: Port = 8100
    grpc_listen: Annotated[str, HostPort()] = "127.0.0.1:50051"
    state_dir: Path = Path("/var/lib/jobpulse")
    database: str = ""  # default: <state_dir>/jobpulse.db
    token: str = ""  # agents must present it when set
    tls_cert: Path | None = None  # server certificate (PEM); with tls_key turns on TLS for gRPC
    tls_key: Path | None = None
    tls_ca: Path | None = None  # when set, agents must present a client certificate signed by it (mTLS)
    # gRPC off loopback needs `token` or `tls_ca`; true lets anyone who reaches the port send data (warned at start)
    allow_unauthenticated_ingest: bool = False
    node_down_after: Interval = 60.0  # seconds of silence after which a node counts as down
    default_tick: Annotated[float, Bounds(gt=0, le=_DAY)] = 10.0
    # Authentication
    admin_user: str = "admin"
    admin_password: str = ""  # empty: a one-time password is printed at first start
    jwt_secret: str = ""  # empty: generated once into <state_dir>/jwt-secret
    session_ttl: Interval = 8 * 3600.0
    ws_ticket_ttl: Annotated[float, Bounds(gt=0, le=_DAY)] = 60.0
    cookie_secure: bool = False  # set true behind HTTPS
    # JobMon's front end reads the session cookie in JavaScript, so by default it is not HttpOnly; set
    # false when no page needs to (a script injected into the page could then not read the token).
    cookie_js_readable: bool = True
    log_level: Annotated[str, OneOf(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))] = "INFO"
    # Storage (docs/storage.md). Retention in days per resolution; 0 keeps that resolution forever.
    retention_raw_days: Days = 14.0
    retention_1m_days: Days = 90.0
    retention_1h_days: Days = 0.0
    rollup_interval: Interval = 60.0  # seconds between rollup passes
    rollup_lag: Delay = 60.0  # a minute is rolled up this many seconds after it ended (late batches)
    retention_interval: Interval = 3600.0
    summary_interval: Interval = 30.0  # seconds between passes that summarize finished jobs
    summary_delay: Delay = 60.0  # wait this long after a job stops (last batches of its nodes)
    checkpoint_interval: Interval = 300.0  # WAL checkpoint
    optimize_interval: Interval = 21600.0  # PRAGMA optimize
    # Efficiency findings (collector/findings.py): each rule tags the job when its threshold is crossed.
    finding_min_duration: Delay = (
        300.0  # seconds; shorter jobs get no efficiency findings but short_many_nodes
    )
    finding_gpu_idle_percent: Annotated[float, Bounds(ge=0, le=100)] = 5.0  # mean utilization below: idle
    finding_cpu_efficiency_min: Fraction = 0.25  # used / allocated core-seconds
    finding_mem_used_fraction_min: Fraction = 0.25  # peak memory / requested memory
    finding_mem_near_limit_fraction: Fraction = 0.95  # peak memory / memory limit
    finding_short_job: Delay = 300.0  # seconds
    finding_many_nodes: Annotated[int, Bounds(ge=1, le=2**31 - 1)] = 8
    # Slurm reconciler: "auto" (on when squeue is in PATH), "on" or "off"
    reconcile: Annotated[str, OneOf(("auto", "on", "off", "true", "false", "yes", "no", "1", "0"))] = "auto"
    reconcile_interval: Interval = 60.0
    reconcile_lookback: Delay = 86400.0
    http: HttpSettings = field(default_factory=HttpSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)

    @property
    def database_path(self) -> Path:
        return Path(self.database) if self.database else self.state_dir / "jobpulse.db"


CONFIG_ENV = "JOBPULSE_COLLECTOR_CONFIG"  # the config file when --config is not given


def load_settings(path: Path | None = None, **overrides: object) -> CollectorSettings:
    """Settings from ``path``, else the file named by $JOBPULSE_COLLECTOR_CONFIG, else
    /etc/jobpulse/collector.toml (the variable lets test runs and second instances avoid the host's file)."""
    named = os.environ.get(CONFIG_ENV)
    chosen = path or (Path(named) if named else DEFAULT_CONFIG_PATH)
    return config.load(CollectorSettings, chosen, overrides=dict(overrides))
