"""The usage rollups (store/usage.py): the margins answer exactly what the daily rollup answers, for any
window, and stay exact through re-ingests (incremental upkeep == a rebuild from the rows)."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import astuple, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from jobpulse.collector.domain.usage import AccountingRecord, UsageFilter
from jobpulse.collector.store import usage
from jobpulse.collector.store.sqlite import SqliteStore
from storehelp import db_of

T0 = 1_735_689_600  # 2025-01-01
STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")


def records(rng: random.Random, n: int, prefix: str = "") -> list[AccountingRecord]:
    out = []
    for i in range(n):
        submit = T0 + rng.randrange(0, 100 * 86400)
        start = submit + rng.choice([0, 30, 900, 7200, 50000, 300000])
        end = start + rng.randrange(0, 90000)
        out.append(
            AccountingRecord(
                job=f"{prefix}{i}",
                user=f"u{rng.randrange(12)}",
                account=f"a{rng.randrange(4)}",
                partition=rng.choice(["cpu", "gpu"]),
                state=rng.choice(STATES),
                qos=rng.choice(["normal", "high"]),
                submit=submit,
                start=start if rng.random() > 0.05 else None,
                end=end,
                cpu_hours=round(rng.random() * 10, 3),
                gpu_hours=round(rng.random() * 2, 3),
                cpus=rng.randrange(1, 9),
                gpus=rng.randrange(0, 3),
                nodes=rng.choice([1, 1, 2]),
                nodelist=rng.choice(["n1", "n2", "n[1-2]", "g[01-04]", ""]),
            )
        )
    return out


def _filled(path: Path) -> sqlite3.Connection:
    store = SqliteStore(path)
    store.open()
    db = db_of(store)
    rng = random.Random(18)
    db.execute("BEGIN")
    usage.ingest_accounting(db, "c1", records(rng, 1500), "ingest")
    db.execute("COMMIT")
    return db


@pytest.fixture
def fx_db(tmp_path: Path) -> sqlite3.Connection:
    """1500 generated records, for a test that writes."""
    return _filled(tmp_path / "u.db")


@pytest.fixture(scope="module")
def fx_read_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    """The same 1500 records, filled once for the tests that only read (55 of them: 0.3 s each saved)."""
    return _filled(tmp_path_factory.mktemp("usage") / "u.db")


def as_daily(f: UsageFilter) -> UsageFilter:
    """The same question forced through usage_daily (filters on two dimensions listing every value: the
    margins and usage_breakdown answer questions filtered on one dimension at most)."""
    return replace(
        f,
        states=f.states or STATES,
        qos=f.qos or ("normal", "high"),
        partitions=f.partitions or (("cpu", "gpu") if f.states and f.qos else ()),
    )


def same(a: usage.UsageGroups, b: usage.UsageGroups) -> None:
    assert a.keys == b.keys and a.jobs == b.jobs and a.users == b.users
    assert a.wait_bins == b.wait_bins and a.duration_bins == b.duration_bins and a.wait_max_s == b.wait_max_s
    assert a.duration_mean_s == pytest.approx(b.duration_mean_s)
    assert a.cpu_hours == pytest.approx(b.cpu_hours) and a.wait_mean_s == pytest.approx(b.wait_mean_s)


@pytest.mark.parametrize("seed", range(6))
def test_margins_answer_as_the_daily_rollup_for_any_window(fx_read_db: sqlite3.Connection, seed: int) -> None:
    rng = random.Random(seed)
    since = date(2025, 1, 1) + timedelta(days=rng.randrange(-10, 60))
    until = since + timedelta(days=rng.randrange(0, 70))
    windows = [UsageFilter(cluster="c1", since=since, until=until), UsageFilter(cluster="c1")]
    for f in windows:
        for by in (
            "period:day",
            "period:week",
            "period:month",
            "period:quarter",
            "period:year",
            "state",
            "account",
            "user_name",
        ):
            same(usage.grouped(fx_read_db, f, by), usage.grouped(fx_read_db, as_daily(f), by))
        assert astuple(usage.totals(fx_read_db, f)) == pytest.approx(
            astuple(usage.totals(fx_read_db, as_daily(f)))
        )
        assert usage.dimension_values(fx_read_db, f) == usage.dimension_values(fx_read_db, as_daily(f))


def test_incremental_upkeep_equals_a_rebuild(fx_db: sqlite3.Connection) -> None:
    rng = random.Random(7)
    fx_db.execute("BEGIN")
    changed = records(rng, 400)  # the same job ids with other figures and days
    usage.ingest_accounting(fx_db, "c1", changed, "sacct")
    usage.ingest_accounting(fx_db, "c2", records(rng, 50, "x"), "ingest")
    fx_db.execute("COMMIT")
    tables = ("usage_daily", "usage_marginal", "usage_breakdown")
    incremental = {t: sorted(map(tuple, fx_db.execute(f"SELECT * FROM {t}"))) for t in tables}
    fx_db.execute("BEGIN")
    usage.rebuild_rollup(fx_db)
    fx_db.execute("COMMIT")
    rebuilt = {t: sorted(map(tuple, fx_db.execute(f"SELECT * FROM {t}"))) for t in tables}
    for table in tables:
        assert [rounded(r) for r in incremental[table]] == [rounded(r) for r in rebuilt[table]]


ONE_FILTER = (
    {"partitions": ("gpu",)},
    {"users": ("u3",)},
    {"only_user": "u5"},
    {"accounts": ("a1", "a2")},
    {"states": ("FAILED",)},
    {"qos": ("high",)},
)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("one", ONE_FILTER, ids=lambda d: next(iter(d)))
def test_a_question_filtered_on_one_dimension_answers_as_the_daily_rollup(
    fx_read_db: sqlite3.Connection, seed: int, one: dict[str, object]
) -> None:
    """Filtered on one dimension (a partition, a user's own view, ...), the figures come from that
    dimension's margins and usage_breakdown; they must be exactly what the daily rollup says."""
    rng = random.Random(seed)
    since = date(2025, 1, 1) + timedelta(days=rng.randrange(-10, 60))
    until = since + timedelta(days=rng.randrange(0, 70))
    for window in (UsageFilter(cluster="c1", since=since, until=until), UsageFilter(cluster="c1")):
        f = replace(window, **one)  # type: ignore[arg-type]
        for by in ("period:day", "period:week", "period:month", "period:quarter", "period:year", "user_name"):
            same(usage.grouped(fx_read_db, f, by), usage.grouped(fx_read_db, as_daily(f), by))
        for by in ("state", "account", "partition", "qos"):
            fast, daily = (
                usage.grouped(fx_read_db, f, by, users=False),
                usage.grouped(fx_read_db, as_daily(f), by),
            )
            assert fast.keys == daily.keys and fast.jobs == daily.jobs and fast.wait_max_s == daily.wait_max_s
            assert fast.cpu_hours == pytest.approx(daily.cpu_hours)
            assert fast.wait_mean_s == pytest.approx(daily.wait_mean_s)
            assert fast.duration_mean_s == pytest.approx(daily.duration_mean_s)
            same(usage.grouped(fx_read_db, f, by, users=True), daily)
        assert astuple(usage.totals(fx_read_db, f)) == pytest.approx(
            astuple(usage.totals(fx_read_db, as_daily(f)))
        )


def plain(db: sqlite3.Connection, f: UsageFilter, select: str, group: str) -> list[tuple[object, ...]]:
    """The same question asked of every job row (the yardstick): ``day`` is the submit day."""
    conds, args = ["cluster = ?"], [f.cluster]
    if f.since is not None:
        conds.append("submit >= ?")
        args.append((f.since - date(1970, 1, 1)).days * 86400)
    if f.until is not None:
        conds.append("submit < ?")
        args.append(((f.until - date(1970, 1, 1)).days + 1) * 86400)
    for column, values in f.dims().items():
        if values:
            conds.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    rows = f"SELECT *, submit / 86400 AS day FROM usage_jobs WHERE {' AND '.join(conds)}"
    return [tuple(r) for r in db.execute(f"SELECT {select} FROM ({rows}) GROUP BY {group} ORDER BY 1", args)]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("one", ({}, *ONE_FILTER, {"partitions": ("gpu",), "only_user": "u5"}), ids=str)
def test_users_sizes_and_node_lists_equal_the_jobs_themselves(
    fx_read_db: sqlite3.Connection, seed: int, one: dict[str, object]
) -> None:
    """The dashboard's user activity (per user, per period, periods per user) and the per-job sizes and
    node lists, for no filter, one filter and two, equal what every job row says."""
    rng = random.Random(seed)
    since = date(2025, 1, 1) + timedelta(days=rng.randrange(-10, 60))
    until = since + timedelta(days=rng.randrange(0, 70))
    for window in (UsageFilter(cluster="c1", since=since, until=until), UsageFilter(cluster="c1")):
        f = replace(window, **one)  # type: ignore[arg-type]
        for period in ("day", "week", "month", "quarter", "year"):
            key = usage._PERIOD_KEYS[period]
            users, per_period, active = usage.user_summary(fx_read_db, f, period)
            expected = plain(fx_read_db, f, "user_name, count(*), round(sum(cpu_hours), 6)", "user_name")
            assert [(u[0], u[1], round(u[2], 6)) for u in users] == expected
            assert sorted(per_period.items()) == plain(
                fx_read_db, f, f"{key}, count(DISTINCT user_name)", key
            )
            assert sorted(active.items()) == plain(
                fx_read_db, f, f"user_name, count(DISTINCT {key})", "user_name"
            )
        for kind in ("cpus", "gpus", "nodes", "nodelist"):
            got = [(str(r[0]), r[1], round(r[2], 6)) for r in usage.breakdown(fx_read_db, f, [kind])[kind]]
            want = plain(fx_read_db, f, f"CAST({kind} AS TEXT), count(*), round(sum(cpu_hours), 6)", kind)
            assert sorted(got) == sorted(want)


def rounded(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in row)


async def test_monitored_runs_are_synced_once(tmp_path: Path) -> None:
    from jobpulse.collector.domain.jobs import JobFacts

    store = SqliteStore(tmp_path / "m.db")
    store.open()
    try:
        facts = JobFacts(user_name="alice", cpus=2, num_nodes=1)
        await store.record_start("c1", 5, T0, facts, "api")
        assert await store.sync_monitored_usage() == 1  # looked at; running, so not counted yet
        assert (await store.usage_totals(UsageFilter(cluster="c1"))).jobs == 0
        await store.record_stop("c1", 5, T0 + 3600, "COMPLETED", 0, "api")
        assert await store.sync_monitored_usage() == 1
        assert await store.sync_monitored_usage() == 0  # nothing changed: not read again
        totals = await store.usage_totals(UsageFilter(cluster="c1"))
        assert (totals.jobs, totals.cpu_hours) == (1, 2.0)
    finally:
        store.close()


def test_migration_13_gives_a_history_the_filtered_day_rows_a_rebuild_makes(
    fx_db: sqlite3.Connection,
) -> None:
    """A history stored by schema 12 kept per day only the whole cluster's sizes and node lists; after
    migration 13 its day rows are exactly those of a rebuild, and a filtered question over days reads them."""
    from jobpulse.collector.store import migrations

    fx_db.execute("BEGIN")
    fx_db.execute("DELETE FROM usage_breakdown WHERE grain = 'd' AND dim != ''")  # what schema 12 kept
    fx_db.execute("PRAGMA user_version = 12")
    fx_db.execute("COMMIT")
    f = UsageFilter(cluster="c1", since=date(2025, 1, 20), until=date(2025, 1, 27), partitions=("gpu",))
    assert usage.breakdown(fx_db, f, ["cpus"])["cpus"] == []  # schema 12's days: nothing for a partition
    assert migrations.migrate(fx_db) == migrations.LATEST
    migrated = sorted(map(tuple, fx_db.execute("SELECT * FROM usage_breakdown WHERE grain = 'd'")))
    fx_db.execute("BEGIN")
    usage.rebuild_rollup(fx_db)
    fx_db.execute("COMMIT")
    rebuilt = sorted(map(tuple, fx_db.execute("SELECT * FROM usage_breakdown WHERE grain = 'd'")))
    assert [rounded(r) for r in migrated] == [rounded(r) for r in rebuilt]
    got = [(str(r[0]), r[1], round(r[2], 6)) for r in usage.breakdown(fx_db, f, ["cpus"])["cpus"]]
    assert sorted(got) == sorted(
        plain(fx_db, f, "CAST(cpus AS TEXT), count(*), round(sum(cpu_hours), 6)", "cpus")
    )


@pytest.mark.parametrize("period", ["day", "week", "month", "quarter", "year"])
def test_period_keys_made_in_python_are_those_sqlite_makes(period: str) -> None:
    """user_summary keys weeks, quarters and years in Python (one pass, no strftime per row): every day
    of 12 years, leap years and weeks across New Year included, gets the key the SQL of the other
    questions gives it, or a period would be split or merged in the dashboard's charts."""
    first = (date(2019, 1, 1) - date(1970, 1, 1)).days
    days = list(range(first, first + 12 * 366))
    db = sqlite3.connect(":memory:")
    sql = f"SELECT {usage._PERIOD_KEYS[period]} FROM (SELECT value AS day FROM json_each(?))"
    expected = [k for (k,) in db.execute(sql, (json.dumps(days),))]
    assert [usage._day_label(day, period) for day in days] == expected


@pytest.mark.parametrize("one", ({}, *ONE_FILTER, {"partitions": ("gpu",), "states": ("FAILED",)}), ids=str)
def test_dimensions_grouped_together_answer_as_each_alone(
    fx_read_db: sqlite3.Connection, one: dict[str, object]
) -> None:
    """The dashboard's states, partitions and accounts come from one read (grouped_dims): each must be
    exactly what its own grouping says, with no filter, one filter (the others broken down together) or two."""
    for since, until in (
        (date(2025, 1, 20), date(2025, 3, 3)),
        (date(2025, 2, 1), date(2025, 2, 28)),
        (None, None),
    ):
        f = replace(UsageFilter(cluster="c1", since=since, until=until), **one)  # type: ignore[arg-type]
        together = usage.grouped_dims(fx_read_db, f, ("state", "partition", "account", "qos", "user_name"))
        for by, groups in together.items():
            alone = usage.grouped(fx_read_db, f, by, users=False)
            assert groups.keys == alone.keys and groups.jobs == alone.jobs and groups.users == alone.users
            assert groups.cpu_hours == pytest.approx(alone.cpu_hours)
            assert groups.wait_max_s == alone.wait_max_s
            assert groups.wait_mean_s == pytest.approx(alone.wait_mean_s)
            assert groups.duration_mean_s == pytest.approx(alone.duration_mean_s)
