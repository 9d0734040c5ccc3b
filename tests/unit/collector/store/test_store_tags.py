"""Tags: the functions the tag endpoints are built on."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobpulse.collector.domain.tags import Tag
from jobpulse.collector.store.tags import add_tag, job_tags, remove_tag
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import T0, Agent, open_db


def test_add_list_remove(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    a = Agent(db, "n1")
    a.event(pb.JobEvent.START, 1, T0 // 1000)
    a.event(pb.JobEvent.START, 2, T0 // 1000)
    r1, r2 = (row[0] for row in db.execute("SELECT run_id FROM jobs ORDER BY job_id"))
    tag = add_tag(db, r1, "paper-2026", "user", "alice")
    assert tag == Tag(tag.id, "paper-2026", "user", "alice") and tag.id > 0
    assert add_tag(db, r1, "paper-2026", "user", "alice") == tag  # idempotent
    assert add_tag(db, r2, "paper-2026", "user", "bob").id == tag.id  # one tag, shared
    add_tag(db, r1, "idle_gpu", "finding", "jobpulse")
    assert [t.name for t in job_tags(db, r1)] == ["idle_gpu", "paper-2026"]
    assert remove_tag(db, r1, "paper-2026") is True
    assert remove_tag(db, r1, "paper-2026") is False
    assert [t.name for t in job_tags(db, r1)] == ["idle_gpu"]
    assert [t.name for t in job_tags(db, r2)] == ["paper-2026"]


def test_bad_input(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    with pytest.raises(ValueError, match="run_id"):
        add_tag(db, 42, "x", "user", "alice")
    with pytest.raises(ValueError, match="name"):
        add_tag(db, 42, " ", "user", "alice")
