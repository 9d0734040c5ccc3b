"""The on-disk spool: order, bounds, restart, torn and corrupt records, and every crash point of a trim."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from jobpulse.agent.spool import HEADER, Spool
from jobpulse.proto.v1 import ingest_pb2 as pb


def batch(i: int, jobs: int = 2) -> pb.Batch:
    b = pb.Batch()
    for j in range(jobs):
        b.jobs.job_id.append(str(100 + j))
        b.jobs.step.append("")
        b.jobs.time_ms.append(1_000_000 + i)
        b.jobs.cpu_user_seconds.append(float(i))
    b.node.append(pb.NodeSample(time_ms=1_000_000 + i, cpu_percent=float(i)))
    return b


def node_times(spool: Spool, after: int = 0) -> list[int]:
    return [pb.Batch.FromString(p).node[0].time_ms - 1_000_000 for _, p in spool.pending(after, 10_000)]


def test_sequence_order_and_replay_after_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    seqs = [spool.append(batch(i)) for i in range(10)]
    assert seqs == list(range(1, 11))
    spool.ack(4)
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.stream_id == spool.stream_id
    assert again.next_seq() == 11  # the sequence continues: the collector dedups by (stream, seq)
    assert [s for s, _ in again.pending(4, 100)] == list(range(5, 11))
    assert node_times(again, 4) == list(range(4, 10))
    payload = again.pending(0, 1)[0][1]
    assert pb.Batch.FromString(payload).seq == again.pending(0, 1)[0][0]


def test_ack_deletes_segments_and_sequence_survives_empty_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for i in range(200):
        spool.append(batch(i))
    assert len(list(tmp_path.glob("seg-*.jps"))) > 3
    spool.ack(200)
    assert len(list(tmp_path.glob("seg-*.jps"))) == 1  # the segment being written stays
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    assert again.next_seq() == 201
    assert again.pending(0) == [] or all(s > 200 for s, _ in again.pending(0))


def test_full_spool_drops_oldest_and_reports_a_gap(tmp_path: Path) -> None:
    limit = 64 * 1024
    spool = Spool(tmp_path, max_bytes=limit, segment_bytes=8 * 1024)
    for i in range(2000):
        spool.append(batch(i))
        assert spool.bytes <= limit
    assert sum(f.stat().st_size for f in tmp_path.glob("seg-*.jps")) <= limit
    assert spool.dropped_batches > 1000
    remaining = [s for s, _ in spool.pending(0, 10_000)]
    assert remaining == list(range(remaining[0], 2001))  # the newest are kept, in order
    reported = [g for _, p in spool.pending(0, 10_000) for g in pb.Batch.FromString(p).gaps]
    # Reports of earlier drops ride in records that may be dropped later: they are carried over,
    # so the sum over what is still in the spool accounts for every dropped batch.
    assert sum(g.batches for g in reported) == spool.dropped_batches == remaining[0] - 1
    assert min(g.from_ms for g in reported) > 0


def test_old_records_dropped_by_age(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, max_age=0.0, segment_bytes=4096)
    for i in range(100):
        spool.append(batch(i))
    assert spool.dropped_batches > 0


def test_torn_last_record_is_skipped_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append(batch(i))
    spool.close()
    (segment,) = tmp_path.glob("seg-*.jps")
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # a power cut in the middle of the last write
    with caplog.at_level(logging.WARNING):
        again = Spool(tmp_path)
    assert "torn record" in caplog.text
    assert [s for s, _ in again.pending(0)] == [1, 2, 3, 4]
    assert again.next_seq() == 5
    seq = again.append(batch(99))
    assert seq == 5
    (gap,) = pb.Batch.FromString(again.pending(4)[0][1]).gaps
    assert gap.batches == 1
    again.close()
    # The repair is durable: a second start finds nothing wrong and reports nothing twice.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = Spool(tmp_path)
    assert "torn" not in caplog.text
    assert [s for s, _ in third.pending(0)] == [1, 2, 3, 4, 5]


def test_corrupt_record_in_the_middle_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    sizes = []
    for i in range(6):
        before = spool.bytes
        spool.append(batch(i))
        sizes.append(spool.bytes - before)
    spool.close()
    (segment,) = tmp_path.glob("seg-*.jps")
    data = bytearray(segment.read_bytes())
    third = sizes[0] + sizes[1]
    data[third + HEADER.size + 3] ^= 0xFF  # flip a payload byte of seq 3
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = Spool(tmp_path)
    assert "corrupt record" in caplog.text
    assert [s for s, _ in again.pending(0)] == [1, 2, 4, 5, 6]
    assert again.corrupt_records == 1


def test_garbage_file_does_not_stop_the_agent(tmp_path: Path) -> None:
    Spool(tmp_path).close()
    (tmp_path / "seg-00000000000000000001.jps").write_bytes(b"\x00garbage" * 100)
    again = Spool(tmp_path)
    assert again.pending(0) == []
    assert again.append(batch(1)) >= 1


def test_crash_after_state_before_segment_delete(tmp_path: Path) -> None:
    """The trap: state says acked, the acknowledged segment file is still there."""
    spool = Spool(tmp_path, segment_bytes=4096)
    for i in range(100):
        spool.append(batch(i))
    spool.close()
    first = sorted(tmp_path.glob("seg-*.jps"))[0]
    state = json.loads((tmp_path / "state.json").read_text())
    acked = int(sorted(tmp_path.glob("seg-*.jps"))[1].stem.split("-")[1]) - 1
    state["floor"] = acked
    (tmp_path / "state.json").write_text(json.dumps(state))
    again = Spool(tmp_path, segment_bytes=4096)
    assert not first.exists()
    assert [s for s, _ in again.pending(0, 1000)] == list(range(acked + 1, 101))
    assert again.next_seq() == 101


def test_crash_after_segment_delete_with_old_state(tmp_path: Path) -> None:
    """A segment gone while the state still has an older floor (or everything deleted): still starts."""
    spool = Spool(tmp_path, segment_bytes=4096)
    for i in range(100):
        spool.append(batch(i))
    spool.close()
    for seg in tmp_path.glob("seg-*.jps"):
        seg.unlink()
    again = Spool(tmp_path, segment_bytes=4096)
    assert again.pending(0) == []
    assert again.append(batch(1)) >= 1


def test_interrupted_state_write_and_missing_state(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(batch(1))
    spool.close()
    (tmp_path / "state.json.tmp").write_text("{half")
    again = Spool(tmp_path)
    assert again.stream_id == spool.stream_id and again.next_seq() == 2
    again.close()
    (tmp_path / "state.json").unlink()
    fresh = Spool(tmp_path)
    # Without the stream id the old records could be stored twice: they are set aside, not replayed.
    assert fresh.stream_id != spool.stream_id
    assert fresh.pending(0) == []
    assert list(tmp_path.glob("lost-*/seg-*.jps"))


def test_pending_gap_survives_a_crash_before_it_is_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=16 * 1024, segment_bytes=4096)
    i = 0
    while spool.dropped_batches == 0:
        before = spool.bytes
        spool.append(batch(i))
        i += 1
    dropped = spool.dropped_batches
    last_size = spool._segments[-1].offsets[-1][1]
    spool.close()
    del before
    # Crash after the drop was recorded but before the record carrying the gap report was written.
    newest = sorted(tmp_path.glob("seg-*.jps"))[-1]
    newest.write_bytes(newest.read_bytes()[:-last_size])
    again = Spool(tmp_path, max_bytes=16 * 1024, segment_bytes=4096)
    seq = again.append(batch(10_000))
    record = pb.Batch.FromString(again.pending(seq - 1)[0][1])
    assert sum(g.batches for g in record.gaps) == dropped
    # Once written into a record it is not owed again after another restart.
    again.close()
    third = Spool(tmp_path, max_bytes=16 * 1024, segment_bytes=4096)
    seq = third.append(batch(10_001))
    assert not pb.Batch.FromString(third.pending(seq - 1)[0][1]).gaps


def test_skip_past_a_sequence_the_collector_already_has(tmp_path: Path) -> None:
    """A spool restored from an old copy must not reuse numbers the collector would take as replays."""
    spool = Spool(tmp_path)
    spool.append(batch(1))
    spool.skip_past(50)
    assert spool.append(batch(2)) == 51
    spool.skip_past(10)  # behind us: nothing to do
    assert spool.append(batch(3)) == 52


def test_rejected_batch_is_kept_aside_and_reported_as_a_gap_even_across_a_crash(tmp_path: Path) -> None:
    """A batch the collector refused (Reject): a copy with the reason in rejected/, one gap (with any
    gap report the refused batch carried) owed to the collector, also after a crash before it is sent."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    first = batch(1)
    first.gaps.append(pb.Gap(from_ms=5, to_ms=6, batches=3, bytes=30))  # an earlier drop it was carrying
    spool.append(first)
    spool.append(batch(2))
    kept = spool.reject(1, "job_id '²' is not a Slurm job number")
    assert kept == tmp_path / "rejected" / f"seq-{1:020d}.json"
    record = json.loads(kept.read_text())
    assert (record["seq"], record["stream_id"], record["reason"]) == (
        1,
        spool.stream_id,
        "job_id '²' is not a Slurm job number",
    )
    assert record["batch"]["jobs"]["job_id"] == ["100", "101"]
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.parent.stat().st_mode & 0o777 == 0o700
    assert spool.rejected_batches == 1
    spool.close()  # "crash": nothing appended since
    again = Spool(tmp_path, max_bytes=1 << 20)
    again.append(batch(3))
    [(_, payload)] = again.pending(2, 10)
    [gap] = pb.Batch.FromString(payload).gaps
    assert (gap.batches, gap.from_ms) == (1 + 3, 5)
    assert gap.bytes == 30 + len(first.SerializeToString())
    assert again.reject(99, "gone") is not None  # a seq no longer in the spool is still counted
    assert "not in the spool" in (tmp_path / "rejected" / f"seq-{99:020d}.json").read_text()
