"""The ingest stage (store/stage.py): rows of whole messages, in arrival order, each batch at a known
rowid range, whether they went in as multi-row chunks or one by one."""

from __future__ import annotations

import sqlite3

import pytest
from jobpulse.collector.store import stage
from jobpulse.collector.store.ingest import prepare
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.stage import CHUNK, Stage
from jobpulse.proto.v1 import ingest_pb2 as pb


def _batch(seq: int, jobs: int) -> pb.Batch:
    batch = pb.Batch(seq=seq)
    for k in range(jobs):
        batch.jobs.job_id.append(str(100 + k))
        batch.jobs.step.append("")
        batch.jobs.time_ms.append(seq * 1000)
        for column in JOB_SAMPLE_COLUMNS:
            getattr(batch.jobs, column).append(seq + k / 100)
    batch.node.add(time_ms=seq * 1000, load1=float(seq))
    return batch


def _staged_rows(db: sqlite3.Connection, kind: str) -> list[tuple[object, ...]]:
    columns = ", ".join(stage.COLUMNS[kind])
    return [tuple(r) for r in db.execute(f"SELECT {columns} FROM stage.{kind} ORDER BY rowid")]


def test_rows_cross_chunk_boundaries_in_order_and_a_dropped_batch_takes_exactly_its_rows() -> None:
    # 2 messages: 10 + 5 batches of 7 job rows: 70 rows (two whole chunks and 6 more), then 35
    first = [prepare("n1", "s", "c", _batch(seq, 7)) for seq in range(1, 11)]
    second = [prepare("n1", "s", "c", _batch(seq, 7)) for seq in range(11, 16)]
    assert 2 * CHUNK < 70 < 3 * CHUNK
    expected = [row for p in first + second for row in p.job_rows]
    staged = Stage()
    staged.add(first)
    staged.add(second)
    assert staged.job_rows == 105
    assert staged.ends[4] == (35, 5, 0) and staged.ends[-1] == (105, 15, 0)
    db = sqlite3.connect(":memory:", isolation_level=None)
    stage.load(db, staged)
    assert _staged_rows(db, "job") == expected
    assert [r[:2] for r in _staged_rows(db, "node")] == [("n1", seq * 1000) for seq in range(1, 16)]
    # batch 5 (index 4) holds rows 29..35: across the boundary of the first chunk (32)
    stage.drop_batches(db, staged, [4, 14])
    kept = [row for i, p in enumerate(first + second) if i not in (4, 14) for row in p.job_rows]
    assert _staged_rows(db, "job") == kept
    assert [r[1] // 1000 for r in _staged_rows(db, "node")] == [s for s in range(1, 16) if s not in (5, 15)]


def test_a_failed_add_leaves_the_stage_as_it_was() -> None:
    ok = [prepare("n1", "s", "c", _batch(1, 40))]
    staged = Stage()
    staged.add(ok)
    bad = prepare("n1", "s", "c", _batch(2, 70))
    row = list(bad.job_rows[40])
    row[5] = object()  # a value SQLite cannot bind, inside the second multi-row chunk (rows 32-63)
    bad.job_rows[40] = tuple(row)
    with pytest.raises(sqlite3.Error):
        staged.add([bad])
    staged.add([prepare("n1", "s", "c", _batch(3, 2))])
    assert staged.ends == [(40, 1, 0), (42, 2, 0)]
    db = sqlite3.connect(":memory:", isolation_level=None)
    stage.load(db, staged)
    assert [r[3] for r in _staged_rows(db, "job")] == [1000] * 40 + [3000] * 2
