"""The ``backfill-sacct`` command's terminal side: arguments, the progress line, the summary."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date

from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.services.backfill import WeekDone, backfill
from jobpulse.collector.services.usage import UsageService
from jobpulse.collector.settings import load_settings
from jobpulse.collector.slurm.cli import SlurmError, SlurmUnavailable
from jobpulse.collector.slurm.sacct_reader import JsonUnsupported, Reader

OPTION = {"json": "--json", "parsable": "--parsable2"}  # the sacct option each format reads


def _day(value: str | None, name: str) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _progress(week: WeekDone) -> None:
    width = 30
    filled = width * week.index // week.weeks
    line = (
        f"[{'#' * filled}{'.' * (width - filled)}] week {week.index}/{week.weeks} "
        f"{week.start}..{week.end}: {week.found} jobs, {week.new} new, {week.changed} updated"
        + (f", {week.skipped} skipped" if week.skipped else "")
        + (f", {week.unfinished} not finished yet" if week.unfinished else "")
    )
    end = "\r" if sys.stderr.isatty() and week.index < week.weeks else "\n"
    print(line.ljust(100), end=end, file=sys.stderr, flush=True)


def run_backfill(args: argparse.Namespace) -> int:
    from jobpulse.collector.store.sqlite import SqliteStore

    try:
        since, until = _day(args.since, "--since"), _day(args.until, "--until")
        if until < since:  # before sacct is asked anything (its version)
            raise InvalidInput("--until", "is before --since")
    except InvalidInput as exc:
        print(f"jobpulse-collector: {exc.field}: {exc.reason}", file=sys.stderr)
        return 2
    settings = load_settings(args.config, state_dir=args.state_dir, database=args.database)
    state_path = settings.state_dir / "backfill-sacct.json"
    if args.restart:
        state_path.unlink(missing_ok=True)
    store = SqliteStore(settings.database_path)
    store.open()
    try:
        reader = Reader(args.format)
        print(f"reading sacct {OPTION[reader.format]} ({reader.why})", file=sys.stderr, flush=True)
        done = asyncio.run(
            backfill(
                UsageService(store),
                since,
                until,
                args.cluster,
                state_path=state_path,
                progress=_progress,
                reader=reader,
            )
        )
    except InvalidInput as exc:
        print(f"jobpulse-collector: {exc.field}: {exc.reason}", file=sys.stderr)
        return 2
    except JsonUnsupported as exc:
        print(f"jobpulse-collector: {exc}", file=sys.stderr)
        return 1
    except (SlurmError, SlurmUnavailable) as exc:
        print(f"jobpulse-collector: {exc} (run again to go on from the last week done)", file=sys.stderr)
        return 1
    finally:
        store.close()
    found = sum(w.found for w in done)
    new = sum(w.new for w in done)
    print(
        f"backfill {since}..{until}: {len(done)} weeks, {found} finished jobs, {new} new"
        f" (sacct {OPTION[reader.format]})"
    )
    return 0
