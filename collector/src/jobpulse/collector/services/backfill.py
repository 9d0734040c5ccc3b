"""``jobpulse-collector backfill-sacct``: the usage history of the past, from sacct, week by week.

Each week is asked of sacct on its own (``--starttime``/``--endtime``; sacct lists the jobs active in
the window, so each week keeps the jobs *submitted* in it, as the exporter does, and a job is in exactly
one week) and stored in one transaction per cluster through the same checks as the ingest route. The
weeks done are written to a state file after each one, so a run that was stopped goes on from the
next week when started again with the same dates; storing is idempotent, so a second run over the same
weeks adds nothing. Jobs still pending or running are left for a later run, so the state file counts a
week as done only once it is over (it ended before today) and none of its jobs was left unfinished,
and never a week after such a one: a second run with the same dates asks sacct again from the first
week that still had a job running (or is still going on), and stores those jobs once they ended.
sacct is read through slurm/sacct_reader.py: ``--json`` where this Slurm has it, else ``--parsable2``,
both giving the same records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.services.usage import UsageService, parse_cluster, parse_record
from jobpulse.collector.slurm.sacct_reader import Reader
from jobpulse.common import statefile

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class WeekDone:
    index: int
    weeks: int
    start: date
    end: date  # exclusive
    found: int  # finished jobs submitted in the week
    new: int
    changed: int
    skipped: int  # lines sacct printed that were not a job record jobpulse could keep
    unfinished: int = 0  # jobs submitted in the week and not finished yet: left for a later run
    format: str = ""  # the sacct output read for the week: "json" or "parsable"


def weeks(since: date, until: date) -> list[tuple[date, date]]:
    """[start, end) windows of 7 days covering since..until (both inclusive)."""
    out = []
    start = since
    while start <= until:
        end = min(start + WEEK, until + timedelta(days=1))
        out.append((start, end))
        start = end
    return out


def _load_state(path: Path | None, since: date, until: date) -> date | None:
    if path is None or not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        if state.get("since") == str(since) and state.get("until") == str(until):
            return date.fromisoformat(state["done_until"])
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable backfill state %s", path)
    return None


async def backfill(
    service: UsageService,
    since: date,
    until: date,
    cluster: str | None = None,
    state_path: Path | None = None,
    progress: Callable[[WeekDone], None] | None = None,
    reader: Reader | None = None,
    today: date | None = None,
) -> list[WeekDone]:
    """Store sacct's finished jobs submitted between ``since`` and ``until`` (inclusive), week by week.

    ``cluster`` replaces sacct's Cluster column (a site whose sacct prints none). ``reader``: how sacct
    is asked (default: ``Reader("auto")``, which runs ``sacct --version``). Raises SlurmError or
    SlurmUnavailable from sacct; the weeks stored before it stay stored and recorded in the state file.
    ``today``: the day the run counts as today (weeks ending after it are not over yet).
    """
    today = date.today() if today is None else today
    if until < since:
        raise InvalidInput("until", "is before since")
    if cluster is not None:
        parse_cluster(cluster, "cluster")
    reader = Reader("auto") if reader is None else reader
    windows = weeks(since, until)
    resume = _load_state(state_path, since, until)
    done: list[WeekDone] = []
    closed = True  # every week so far is over and had no unfinished job: the state file may move on
    for index, (start, end) in enumerate(windows, 1):
        if resume is not None and end <= resume:
            continue
        answer = reader.window(start.isoformat(), end.isoformat())
        per_cluster: dict[str, list[dict[str, object]]] = {}
        skipped = 0
        lo, hi = datetime.combine(start, datetime.min.time()), datetime.combine(end, datetime.min.time())
        for name, raw in answer.records:
            try:
                submitted = datetime.fromisoformat(str(raw["Submit"]))
            except ValueError:
                skipped += 1
                continue
            if not lo <= submitted < hi:
                continue  # another week's job, still active in this one
            per_cluster.setdefault(cluster or name, []).append(raw)
        still = 0
        for _job, submit in answer.unfinished:
            try:
                if lo <= datetime.fromisoformat(submit) < hi:
                    still += 1
            except ValueError:
                still += 1  # no readable Submit: cannot tell which week it is, so none is closed
        new = changed = found = 0
        for name, raws in sorted(per_cluster.items()):
            try:
                host = parse_cluster(name, "Cluster")
            except InvalidInput:
                log.warning("sacct printed jobs without a usable Cluster (%r): give --cluster", name)
                skipped += len(raws)
                continue
            records = []
            for i, raw in enumerate(raws):
                try:
                    records.append(parse_record(raw, f"sacct line {i}"))
                except InvalidInput as exc:
                    log.warning("skipping job %s: %s", raw.get("JobID"), exc.message)
                    skipped += 1
            result = await service.store_records(host, records, "sacct")
            new, changed, found = new + result.new, changed + result.changed, found + len(records)
        week = WeekDone(index, len(windows), start, end, found, new, changed, skipped, still, reader.format)
        done.append(week)
        closed = closed and still == 0 and end <= today
        if state_path is not None and closed:
            statefile.write_atomic(
                state_path,
                json.dumps({"since": str(since), "until": str(until), "done_until": str(end)}),
                0o600,
            )
        if progress is not None:
            progress(week)
    return done
