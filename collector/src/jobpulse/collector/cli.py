"""`jobpulse-collector`: serve, backup."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from jobpulse.collector.settings import load_settings
from jobpulse.common.config import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    from jobpulse.collector.app import run

    settings = load_settings(
        args.config,
        state_dir=args.state_dir,
        http_host=args.http_host,
        http_port=args.http_port,
        grpc_listen=args.grpc_listen,
        database=args.database,
    )
    logging.getLogger().setLevel(settings.log_level.upper())
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        run(settings, ready_file=args.ready_file)
    except OSError as exc:
        print(f"jobpulse-collector: {exc}", file=sys.stderr)
        return 1
    return 0


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
    backup = sub.add_parser("backup", help="copy the database to PATH while the collector keeps running")
    backup.add_argument("path", type=Path, help="destination file (must not exist)")
    backup.add_argument("--config", type=Path, help="TOML config (default /etc/jobpulse/collector.toml)")
    backup.add_argument("--state-dir", type=Path, help="database directory (default /var/lib/jobpulse)")
    backup.add_argument("--database", help="SQLite file (default <state-dir>/jobpulse.db)")
    backup.set_defaults(func=cmd_backup)
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
