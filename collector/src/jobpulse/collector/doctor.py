"""``jobpulse-collector doctor``: check the collector's host before (and while) it serves.

The settings as ``serve`` would load and refuse them, the database (SQLite's integrity check and the
schema version against this code: a newer one is a downgrade that ``serve`` refuses), free disk where
the database grows, and the TLS files. Read-only: nothing is migrated, created or written.
"""

from __future__ import annotations

from jobpulse.collector.settings import CollectorSettings
from jobpulse.common.doctor import Finding, Status, disk_finding

# Below this much free space the database has little room left for a day of raw samples of a
# mid-size cluster (bench/RESULTS.md: docs/operations.md sizes it per node count).
DISK_WARN_BYTES = 2 * 1024**3


def check_settings(settings: CollectorSettings) -> list[Finding]:
    """What ``serve`` would refuse at start (ingest without credentials off loopback), and TLS files."""
    from jobpulse.collector.ingest import check_ingest_auth
    from jobpulse.common.config import ConfigError

    found: list[Finding] = []
    try:
        check_ingest_auth(settings)
    except ConfigError as exc:
        return [
            Finding("config", Status.FAIL, str(exc), "set `token` in collector.toml (and every agent.toml)")
        ]
    auth = (
        "token" if settings.token else ("client certificates" if settings.tls_ca else "none (loopback only)")
    )
    found.append(
        Finding(
            "config",
            Status.OK,
            f"gRPC {settings.grpc_listen} (agents' credential: {auth}), HTTP {settings.http_host}:{settings.http_port}",
        )
    )
    files = [p for p in (settings.tls_cert, settings.tls_key, settings.tls_ca) if p is not None]
    if bool(settings.tls_cert) != bool(settings.tls_key):
        found.append(
            Finding("tls", Status.FAIL, "tls_cert and tls_key must be set together", "set both, or neither")
        )
    for path in files:
        try:
            path.read_bytes()
        except OSError as exc:
            found.append(
                Finding(
                    "tls",
                    Status.FAIL,
                    f"cannot read {path}: {exc}",
                    "fix the path or its permissions (readable by the jobpulse user)",
                )
            )
    if files and not any(f.check == "tls" for f in found):
        found.append(Finding("tls", Status.OK, "TLS files readable: " + ", ".join(str(p) for p in files)))
    return found


def check_database(settings: CollectorSettings, full: bool = False) -> list[Finding]:
    """Integrity and schema version of the database, and room for it to grow."""
    from jobpulse.collector.store.health import DatabaseUnreadable, database_health

    path = settings.database_path
    found = [
        disk_finding(
            "disk",
            path.parent,
            "the database",
            DISK_WARN_BYTES,
            "free space there (retention_raw_days shorter, a larger volume) or move state_dir; at 0 bytes "
            "free ingest stops (agents keep their data in their spools) and the API answers 503",
        )
    ]
    if not path.exists():
        found.insert(
            0, Finding("database", Status.INFO, f"no database at {path} yet: created at the first start")
        )
        return found
    try:
        health = database_health(path, full=full)
    except DatabaseUnreadable as exc:
        found.insert(
            0,
            Finding(
                "database",
                Status.FAIL,
                f"cannot read {path}: {exc}",
                "restore the last backup (docs/operations.md)",
            ),
        )
        return found
    size = f"{health.size_bytes / 1024**2:.1f} MiB"
    if health.check != "ok":
        found.insert(
            0,
            Finding(
                "database",
                Status.FAIL,
                f"{path} ({size}) failed SQLite's {'integrity' if full else 'quick'} check: {health.check}",
                "stop the collector and restore the last backup (docs/operations.md)",
            ),
        )
    else:
        found.insert(
            0,
            Finding(
                "database",
                Status.OK,
                f"{path} ({size}, journal {health.journal_mode}) passed SQLite's {'integrity' if full else 'quick'} check",
            ),
        )
    if health.schema_version > health.code_version:
        found.insert(
            1,
            Finding(
                "schema",
                Status.FAIL,
                f"schema version {health.schema_version} is newer than this collector ({health.code_version}): a newer jobpulse-collector wrote it and this one refuses to start on it",
                "reinstall the newer jobpulse-collector, or restore the backup made before the upgrade",
            ),
        )
    elif health.schema_version < health.code_version:
        found.insert(
            1,
            Finding(
                "schema",
                Status.INFO,
                f"schema version {health.schema_version}: the collector migrates it to {health.code_version} at its next start",
                "back up first: jobpulse-collector backup PATH",
            ),
        )
    else:
        found.insert(1, Finding("schema", Status.OK, f"schema version {health.schema_version} (current)"))
    return found


def run_checks(settings: CollectorSettings, full: bool = False) -> list[Finding]:
    return check_settings(settings) + check_database(settings, full)
