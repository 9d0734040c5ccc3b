"""Which sacct output the backfill reads (slurm/sacct_reader.py): ``--json`` where ``sacct --version``
says 21.08 or later, else ``--parsable2``; auto falls back when sacct refuses ``--json``; a format asked
for by name fails with sacct's message. sacct here is fake callables over real captured output."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import pytest
from jobpulse.collector.services.backfill import WeekDone, backfill
from jobpulse.collector.services.usage import UsageService
from jobpulse.collector.slurm import cli
from jobpulse.collector.slurm.cli import SlurmError
from jobpulse.collector.slurm.sacct_reader import JsonUnsupported, Reader, version_of
from jobpulse.collector.store.sqlite import SqliteStore
from support import FIXTURES

SLURM = FIXTURES / "slurm"
REFUSED = SlurmError("sacct --json --allusers exited 1: sacct: unrecognized option '--json'")
pytestmark = pytest.mark.usefixtures("fx_utc")


class FakeSacct:
    """sacct as the reader calls it: the real week captured on the test cluster, each call noted."""

    def __init__(
        self, version: str, json_error: SlurmError | None = None, week: str = "backfill-week"
    ) -> None:
        self.version_text, self.json_error = version, json_error
        self.calls: list[str] = []
        self.text = (SLURM / f"sacct-P-{week}.txt").read_text()
        self.doc = SLURM / f"sacct-json-{week}.json"

    def version(self) -> str:
        self.calls.append("--version")
        return self.version_text

    def parsable(self, fields: list[str], start: str, end: str) -> str:
        self.calls.append(f"--parsable2 {start} {end}")
        return self.text

    def json(self, start: str, end: str) -> dict[str, Any]:
        self.calls.append(f"--json {start} {end}")
        if self.json_error is not None:
            raise self.json_error
        doc: dict[str, Any] = json.loads(self.doc.read_text())
        return doc

    def reader(self, asked: str = "auto") -> Reader:
        return Reader(asked, version=self.version, parsable=self.parsable, json=self.json)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("slurm-wlm 22.05.8", "json"),  # Debian's
        ("slurm 21.08.0", "json"),
        ("slurm 24.11.1", "json"),
        ("slurm 21.05.5", "parsable"),
        ("slurm 20.11.9", "parsable"),
        ("sacct: something else", "parsable"),
    ],
)
def test_auto_reads_json_from_slurm_21_08(said: str, expected: str) -> None:
    sacct = FakeSacct(said)
    reader = sacct.reader()
    assert reader.format == expected and said in reader.why
    reader.window("2026-12-01", "2026-12-08")
    assert sacct.calls == [
        "--version",
        f"--{'json' if expected == 'json' else 'parsable2'} 2026-12-01 2026-12-08",
    ]


def test_version_of() -> None:
    assert version_of("slurm-wlm 22.05.8") == (22, 5)
    assert version_of("slurm 23.11.10") == (23, 11)
    assert version_of("") is None


async def _backfill(store: SqliteStore, sacct: FakeSacct, since: date) -> list[WeekDone]:
    """The backfill of ``since``..2026-12-07 in auto, every week over."""
    service = UsageService(store)
    return await backfill(service, since, date(2026, 12, 7), reader=sacct.reader(), today=date(2026, 12, 31))


async def test_auto_backfill_on_an_older_sacct_reads_parsable(fx_store: SqliteStore) -> None:
    sacct = FakeSacct("slurm 20.11.9", json_error=REFUSED)
    weeks = await _backfill(fx_store, sacct, date(2026, 12, 1))
    assert [w.format for w in weeks] == ["parsable"]
    assert (weeks[0].found, weeks[0].new, weeks[0].unfinished) == (13, 13, 2)
    assert sacct.calls == ["--version", "--parsable2 2026-12-01 2026-12-08"]  # --json never tried


async def test_auto_falls_back_to_parsable_once_when_sacct_refuses_json(
    fx_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    sacct = FakeSacct("slurm 22.05.8", json_error=REFUSED)  # says 21.08+, yet refuses --json (a wrapper)
    caplog.set_level(logging.WARNING)
    weeks = await _backfill(fx_store, sacct, date(2026, 11, 30))
    assert [w.format for w in weeks] == ["parsable", "parsable"]
    assert sacct.calls == [
        "--version",
        "--json 2026-11-30 2026-12-07",
        "--parsable2 2026-11-30 2026-12-07",
        "--parsable2 2026-12-07 2026-12-08",
    ]
    assert "unrecognized option '--json'" in caplog.text and "--parsable2 instead" in caplog.text


def test_json_asked_for_fails_with_saccts_message() -> None:
    sacct = FakeSacct("slurm 20.11.9", json_error=REFUSED)
    reader = sacct.reader("json")
    assert (reader.format, sacct.calls) == ("json", [])  # sacct --version is not asked
    with pytest.raises(JsonUnsupported, match=r"unrecognized option '--json'.*--format parsable"):
        reader.window("2026-12-01", "2026-12-08")
    assert sacct.calls == ["--json 2026-12-01 2026-12-08"]


def test_other_sacct_failures_are_not_a_reason_to_change_format() -> None:
    down = SlurmError(
        "sacct --json exited 1: sacct: error: Problem talking to the database: Connection refused"
    )
    sacct = FakeSacct("slurm 22.05.8", json_error=down)
    reader = sacct.reader()
    with pytest.raises(SlurmError, match="Problem talking to the database") as caught:
        reader.window("2026-12-01", "2026-12-08")
    assert not isinstance(caught.value, JsonUnsupported) and reader.format == "json"
    assert FakeSacct("x").reader("parsable").window("2026-12-01", "2026-12-08").unfinished


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, json, parsable"):
        Reader("xml")


def test_a_window_without_jobs_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """22.05's sacct --json says "Nothing found" in ``errors`` (exit 0) of a window without jobs."""
    said = (SLURM / "sacct-json-nothing-found.json").read_text()
    monkeypatch.setattr(cli, "_run", lambda args, timeout=30.0: said)
    assert cli.sacct_json("2025-01-01", "2025-01-08")["jobs"] == []
    failed = json.loads(said)
    failed["errors"] = [{"description": "Unable to query", "error_number": 9000, "error": "bad query"}]
    monkeypatch.setattr(cli, "_run", lambda args, timeout=30.0: json.dumps(failed))
    with pytest.raises(SlurmError, match="reported: Unable to query"):
        cli.sacct_json("2025-01-01", "2025-01-08")


def test_auto_reads_a_window_again_as_parsable_where_json_names_no_user(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slurm 22.05's --json takes a job's user from its association: on a cluster that does not enforce
    associations (captured on the test cluster: alice's and bob's jobs had none) it says ``"user": null``
    where --parsable2 names the uid's user. auto reads that window again with --parsable2, so no job is
    stored without its user; the usual case (every job named) reads --json once."""
    sacct = FakeSacct("slurm-wlm 22.05.8", week="no-association")
    with caplog.at_level(logging.WARNING):
        found = sacct.reader().window("2026-12-03", "2026-12-05")
    users = {record["JobID"]: record["User"] for _, record in found.records}
    assert users == {"7000": "root", "7001": "alice", "7002": "alice", "7003_1": "bob", "7003_2": "bob",
                     "7003_3": "bob", "7004": "bob", "7005": "root"}  # fmt: skip
    assert sacct.calls == ["--version", "--json 2026-12-03 2026-12-05", "--parsable2 2026-12-03 2026-12-05"]
    assert "names no user for 6 job(s)" in caplog.text
    named = FakeSacct("slurm-wlm 22.05.8")
    named.reader().window("2026-12-04", "2026-12-05")
    assert named.calls == ["--version", "--json 2026-12-04 2026-12-05"]


def test_json_asked_for_stores_jobs_without_a_user_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    sacct = FakeSacct("slurm-wlm 22.05.8", week="no-association")
    with caplog.at_level(logging.WARNING):
        found = sacct.reader("json").window("2026-12-03", "2026-12-05")
    assert {record["User"] for _, record in found.records if record["JobID"] == "7001"} == {""}
    assert sacct.calls == ["--json 2026-12-03 2026-12-05"]
    assert "stored without a user" in caplog.text
