"""`jobpulse-collector`: serve, backup, create-api-key, add-user, doctor."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jobpulse.collector.settings import load_settings
from jobpulse.common import statefile
from jobpulse.common.config import ConfigError

if TYPE_CHECKING:
    from jobpulse.collector.services.accounts import AccountService

T = TypeVar("T")

# `serve`'s exit status when the database is newer than this code (systemd/jobpulse-collector.service
# names it in RestartPreventExitStatus, so a downgraded collector stops instead of restarting forever).
EXIT_SCHEMA_TOO_NEW = 3


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config,
        state_dir=args.state_dir,
        http_host=args.http_host,
        http_port=args.http_port,
        grpc_listen=args.grpc_listen,
        database=args.database,
    )
    logging.getLogger().setLevel(settings.log_level.upper())
    from jobpulse.collector.app import run  # the web stack, once the settings are known to be good
    from jobpulse.collector.store.migrations import SchemaTooNew

    try:
        statefile.private_dir(settings.state_dir)  # 0700 whatever the umask
        run(settings, ready_file=args.ready_file)
    except SchemaTooNew as exc:
        # A downgrade: restarting cannot help (the unit's RestartPreventExitStatus stops the loop).
        print(f"jobpulse-collector: refusing to start: {exc}", file=sys.stderr)
        return EXIT_SCHEMA_TOO_NEW
    except OSError as exc:
        print(f"jobpulse-collector: {exc}", file=sys.stderr)
        return 1
    return 0


def _open_store(args: argparse.Namespace) -> tuple[object, object]:
    from jobpulse.collector.store.sqlite import SqliteStore

    settings = load_settings(args.config, state_dir=args.state_dir, database=args.database)
    store = SqliteStore(settings.database_path)
    store.open()
    return settings, store


def _run_accounts(args: argparse.Namespace, call: Callable[[AccountService], Coroutine[Any, Any, T]]) -> T:
    """``call(accounts service)`` on the configured database, opened for this one command."""
    from jobpulse.collector.services.accounts import AccountService
    from jobpulse.collector.store.sqlite import SqliteStore

    _settings, store = _open_store(args)
    assert isinstance(store, SqliteStore)
    try:
        return asyncio.run(call(AccountService(store)))
    finally:
        store.close()


def cmd_create_api_key(args: argparse.Namespace) -> int:
    """Admins make keys for scripts and Slurm hooks here; the key is printed once and stored hashed.

    The owner is always named: ``--service NAME`` (job-control keys, e.g. the Slurm hooks' key, belong to
    the service principal ``service:NAME``) or ``--owner USER`` (user and admin keys act as that person,
    who must exist and hold the role, and work only while they do).
    """
    from jobpulse.collector.auth.roles import ALL_ROLES
    from jobpulse.collector.domain.errors import InvalidInput
    from jobpulse.collector.services.accounts import CLI, key_owner

    if args.role not in ALL_ROLES:
        print(f"jobpulse-collector: --role must be one of {sorted(ALL_ROLES)}", file=sys.stderr)
        return 2
    try:
        if not args.service and not args.owner:
            hint = (
                "--service NAME (e.g. --service slurm-hooks)"
                if args.role in ("job-control", "ingest")
                else "--owner USER"
            )
            raise InvalidInput("owner", f"name the key's owner with {hint}")
        owner = key_owner(args.role, args.owner, args.service)  # checked here, before the database opens
        ttl = args.days * 86400 if args.days else None
        key, record = _run_accounts(
            args,
            lambda accounts: accounts.create_api_key(
                CLI, args.role, owner=owner, name=args.name, ttl_seconds=ttl, audit_name=True
            ),
        )
    except InvalidInput as exc:
        print(f"jobpulse-collector: {exc.reason}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"(key id {record.id}, role {args.role}, owner {owner}; shown only now, stored hashed)",
        file=sys.stderr,
    )
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    """Create or update a local user; the password is read from stdin, never from the command line."""
    from jobpulse.collector.auth.roles import ALL_ROLES
    from jobpulse.collector.domain.errors import InvalidInput
    from jobpulse.collector.services.accounts import CLI, check_user_name

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    unknown = set(roles) - ALL_ROLES
    if unknown:
        print(
            f"jobpulse-collector: unknown roles {sorted(unknown)}; use {sorted(ALL_ROLES)}", file=sys.stderr
        )
        return 2
    try:
        check_user_name(args.username)
    except ValueError as exc:
        print(f"jobpulse-collector: {exc}", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("jobpulse-collector: give a password of at least 8 characters on stdin", file=sys.stderr)
        return 2
    try:
        _run_accounts(args, lambda accounts: accounts.add_user(CLI, args.username, roles, password))
    except InvalidInput as exc:
        print(f"jobpulse-collector: {exc.reason}", file=sys.stderr)
        return 2
    print(f"user {args.username!r} saved with roles {roles}")
    return 0


def _store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config (default /etc/jobpulse/collector.toml)")
    parser.add_argument("--state-dir", type=Path, help="database directory (default /var/lib/jobpulse)")
    parser.add_argument("--database", help="SQLite file (default <state-dir>/jobpulse.db)")


def cmd_backup(args: argparse.Namespace) -> int:
    """Online backup: safe while the collector runs and ingests."""
    from jobpulse.collector.store.maintenance import backup

    settings = load_settings(args.config, state_dir=args.state_dir, database=args.database)
    try:
        pages = backup(settings.database_path, args.path)
    except (OSError, RuntimeError) as exc:
        print(f"jobpulse-collector: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {settings.database_path} to {args.path} ({pages} pages)")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the settings, database and disk (collector/doctor.py); exit 0 ok, 1 warnings, 2 failures."""
    from jobpulse.collector import doctor
    from jobpulse.common.doctor import Finding, Status, exit_status, render, to_json

    try:
        settings = load_settings(args.config, state_dir=args.state_dir, database=args.database)
        findings = doctor.run_checks(settings, full=args.full)
    except ConfigError as exc:
        findings = [Finding("config", Status.FAIL, str(exc), "fix the setting it names")]
    title = f"jobpulse-collector doctor: config {args.config or '/etc/jobpulse/collector.toml'}"
    print(to_json(findings) if args.json else render(title, findings))
    return exit_status(findings)


def cmd_backfill_sacct(args: argparse.Namespace) -> int:
    """Usage history from sacct, week by week (services/backfill.py)."""
    from jobpulse.collector.backfill_cli import run_backfill

    return run_backfill(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobpulse-collector", description="jobpulse collector")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run gRPC ingest and the HTTP API")
    serve.add_argument("--config", type=Path, help="TOML config (default /etc/jobpulse/collector.toml)")
    serve.add_argument("--state-dir", type=Path, help="database directory (default /var/lib/jobpulse)")
    serve.add_argument("--database", help="SQLite file (default <state-dir>/jobpulse.db)")
    serve.add_argument("--http-host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port (default 8100; 0 = any free port)")
    serve.add_argument("--grpc-listen", help="gRPC bind host:port (default 127.0.0.1:50051)")
    serve.add_argument("--ready-file", type=Path, help="write the bound ports here as JSON once listening")
    serve.set_defaults(func=cmd_serve)
    key = sub.add_parser("create-api-key", help="create an API key (printed once, stored hashed)")
    _store_args(key)
    key.add_argument(
        "--role",
        required=True,
        help="user, admin, job-control (Slurm prolog/epilog) or ingest (usage exporter)",
    )
    owner = key.add_mutually_exclusive_group()
    owner.add_argument(
        "--service",
        help="job-control keys: the service principal that owns the key (service:NAME), e.g. slurm-hooks",
    )
    owner.add_argument(
        "--owner",
        help="user and admin keys: the person the key acts as (must hold the role; works while they do)",
    )
    key.add_argument("--name", default="", help="what the key is for, e.g. slurm-hooks")
    key.add_argument("--days", type=float, help="expire after this many days (default: never)")
    key.set_defaults(func=cmd_create_api_key)
    user = sub.add_parser("add-user", help="create or update a local user; password on stdin")
    _store_args(user)
    user.add_argument("username")
    user.add_argument("--roles", default="user", help="comma-separated: user, admin, job-control")
    user.set_defaults(func=cmd_add_user)
    backup = sub.add_parser("backup", help="copy the database to PATH while the collector keeps running")
    backup.add_argument("path", type=Path, help="destination file (must not exist)")
    backup.add_argument("--config", type=Path, help="TOML config (default /etc/jobpulse/collector.toml)")
    backup.add_argument("--state-dir", type=Path, help="database directory (default /var/lib/jobpulse)")
    backup.add_argument("--database", help="SQLite file (default <state-dir>/jobpulse.db)")
    backup.set_defaults(func=cmd_backup)
    doc = sub.add_parser("doctor", help="check settings, database (integrity, schema version) and free disk")
    _store_args(doc)
    doc.add_argument(
        "--full", action="store_true", help="SQLite's full integrity_check (slow on big databases)"
    )
    doc.add_argument("--json", action="store_true", help="the findings as JSON")
    doc.set_defaults(func=cmd_doctor)

    fill = sub.add_parser(
        "backfill-sacct", help="store past jobs' usage from sacct, week by week (resumable)"
    )
    _store_args(fill)
    fill.add_argument("--since", required=True, help="first submit day, YYYY-MM-DD")
    fill.add_argument("--until", help="last submit day, YYYY-MM-DD (default: today)")
    fill.add_argument("--cluster", help="cluster name for every job (default: sacct's Cluster column)")
    fill.add_argument("--restart", action="store_true", help="ignore the weeks a stopped run already did")
    fill.add_argument(
        "--format",
        choices=("auto", "json", "parsable"),
        default="auto",
        help="sacct output to read: json (sacct --json, Slurm 21.08+), parsable (--parsable2), or auto"
        " (default: json where sacct --version says 21.08 or later, else parsable)",
    )
    fill.set_defaults(func=cmd_backfill_sacct)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"jobpulse-collector: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
