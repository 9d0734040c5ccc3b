"""A group's sample rows, staged in a private in-memory SQLite database by the thread that decoded them.

Why: the collector is one process, so its event loop and its SQLite writer share the GIL. Python's
sqlite3 releases the GIL around every ``sqlite3_step`` and takes it back afterwards, so an
``executemany`` on the writer thread waits for the GIL once per row whenever the event loop is busy
(measured here: 1,300 rows/s against a busy thread, 150,000 alone), and under load the writer then ran
only while the event loop was idle: the two took turns on one core (bench/RESULTS.md, fourth round).

Staged, every per-row Python step (binding the parameters) runs on the event loop, which has just
decoded those rows anyway; the writer thread gets the stage as one serialized image and moves it into
the real tables with a few ``INSERT ... SELECT`` statements, each a single ``sqlite3_step`` that runs
without the GIL: the B-tree inserts, the sort and the commit overlap with the event loop decoding the
next messages on the other core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from jobpulse.collector.store.migrations import GPU_SAMPLE_COLUMNS, JOB_SAMPLE_COLUMNS, NODE_SAMPLE_COLUMNS

if TYPE_CHECKING:
    from jobpulse.collector.store.ingest import Pending

SCHEMA = "stage"  # the name the image is attached under on the writer connection

# Staged table -> its columns, in the order prepare() builds the rows; the same names as the real table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "job": ("job_id", "node", "step", "ts", *JOB_SAMPLE_COLUMNS),
    "node": ("node", "ts", *NODE_SAMPLE_COLUMNS),
    "gpu": ("node", "uuid", "ts", "job_id", *GPU_SAMPLE_COLUMNS),
}
# Rows go CHUNK at a time, one multi-row INSERT per chunk: one sqlite3_step, so one GIL release and
# re-take, per CHUNK rows instead of per row. That helps messages of CHUNK rows or more (an agent
# replaying a backlog); the rest of a message, and a live agent's one-tick message, go one row per step.
CHUNK = 32
_ONE = {kind: f"({', '.join('?' for _ in columns)})" for kind, columns in COLUMNS.items()}
_INSERT = {kind: f"INSERT INTO {kind} VALUES {row}" for kind, row in _ONE.items()}
_INSERT_CHUNK = {kind: f"INSERT INTO {kind} VALUES {', '.join([row] * CHUNK)}" for kind, row in _ONE.items()}


def _insert(db: sqlite3.Connection, kind: str, rows: list[tuple[Any, ...]]) -> None:
    """Append ``rows`` in order: whole chunks first (each flattened into one parameter list), then the rest."""
    whole = len(rows) - len(rows) % CHUNK
    if whole:
        chunks = [list(chain.from_iterable(rows[i : i + CHUNK])) for i in range(0, whole, CHUNK)]
        db.executemany(_INSERT_CHUNK[kind], chunks)
    if whole < len(rows):
        db.executemany(_INSERT[kind], rows[whole:])


class Stage:
    """Rows of whole agent messages, in arrival order, each batch's rows at a known rowid range.

    ``add`` runs on the thread that prepared the rows (the event loop); once the group is handed to
    the writer nothing adds to it again, and ``load`` copies and closes it on the writer thread.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        for kind, columns in COLUMNS.items():
            self._db.execute(f"CREATE TABLE {kind} ({', '.join(columns)})")
        # Per batch: the last rowid of its rows in each table, job, node and GPU (rowids are 1, 2, ...
        # in insertion order: nothing is ever deleted here), so the writer can drop a replayed batch's rows.
        self.ends: list[tuple[int, int, int]] = []

    @property
    def job_rows(self) -> int:
        """Job rows staged so far (what a group's size is measured in)."""
        return self.ends[-1][0] if self.ends else 0

    def add(self, items: Sequence[Pending]) -> None:
        """Stage the rows of consecutive batches (one agent message), in one transaction."""
        if any(p.rows_dropped for p in items):
            raise ValueError("a batch's rows were dropped: prepare() it again")
        db = self._db
        db.execute("BEGIN")
        try:
            _insert(db, "job", [row for p in items for row in p.job_rows])
            _insert(db, "node", [row for p in items for row in p.node_rows])
            _insert(db, "gpu", [row for p in items for row in p.gpu_rows])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already
                db.execute("ROLLBACK")
            raise
        job, node, gpu = self.ends[-1] if self.ends else (0, 0, 0)
        for p in items:
            job, node, gpu = job + len(p.job_rows), node + len(p.node_rows), gpu + len(p.gpu_rows)
            self.ends.append((job, node, gpu))

    def image(self) -> bytes:
        """The staged rows as one database image, for ``load``; closes the stage (see there)."""
        try:
            return self._db.serialize()
        finally:
            self.close()

    def close(self) -> None:
        """Free the staged rows (closing twice is harmless)."""
        self._db.close()


def load(db: sqlite3.Connection, stage: Stage) -> None:
    """Attach ``stage``'s rows to ``db`` as schema ``stage``, and close ``stage``.

    Runs on the writer thread, outside a transaction (ATTACH needs that). The stage is freed as soon
    as it is copied, and nothing touches its connection once the writer has it.
    """
    image = stage.image()
    if not any(row[1] == SCHEMA for row in db.execute("PRAGMA database_list")):
        db.execute(f"ATTACH DATABASE ':memory:' AS {SCHEMA}")
    db.deserialize(image, name=SCHEMA)


def drop_batches(db: sqlite3.Connection, stage: Stage, skipped: list[int]) -> None:
    """Remove the staged rows of the batches at these positions (replays: acknowledged, not stored)."""
    for kind, k in (("job", 0), ("node", 1), ("gpu", 2)):
        spans = []
        for i in skipped:
            first = stage.ends[i - 1][k] + 1 if i else 1
            last = stage.ends[i][k]
            if last >= first:
                spans.append((first, last))
        if spans:
            db.executemany(f"DELETE FROM {SCHEMA}.{kind} WHERE rowid BETWEEN ? AND ?", spans)
