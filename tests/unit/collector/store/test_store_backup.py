"""`jobpulse-collector backup` while ingest runs: the copy opens and holds whole batches only."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from jobpulse.collector.store.sqlite import connect
from storehelp import T0, Agent, open_db

ROWS = 200  # samples per batch


def test_backup_during_ingest_is_consistent(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    open_db(path).close()
    stop = threading.Event()
    sent = [0]

    def ingest() -> None:
        agent = Agent(connect(path), "n1")
        while not stop.is_set():
            base = T0 + agent.seq * ROWS * 1000
            agent.samples(1, [(base + i * 1000, {"cpu_cores": 1.0}) for i in range(ROWS)])
            sent[0] = agent.seq

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        copies = []
        for i in range(3):
            dest = tmp_path / f"backup-{i}.db"
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "jobpulse.collector.cli",
                    "backup",
                    str(dest),
                    "--database",
                    str(path),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert "backed up" in done.stdout
            copies.append(dest)
    finally:
        stop.set()
        writer.join()
    assert sent[0] > 0
    for dest in copies:
        db = sqlite3.connect(dest)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seq = db.execute("SELECT last_seq FROM agent_streams").fetchone()
        last = seq[0] if seq else 0
        # Every acknowledged batch is in the copy whole, and nothing of a batch that was not.
        assert db.execute("SELECT count(*) FROM job_samples").fetchone()[0] == ROWS * last
        assert db.execute("SELECT count(*) FROM job_series").fetchone()[0] == (1 if last else 0)
        db.close()


def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    open_db(path).close()
    (tmp_path / "exists.db").write_text("precious")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobpulse.collector.cli",
            "backup",
            str(tmp_path / "exists.db"),
            "--database",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "exists" in done.stderr
    assert (tmp_path / "exists.db").read_text() == "precious"
