"""Batches waiting for the collector's acknowledgement, on disk, bounded by size and age.

Layout of the spool directory::

    state.json              stream_id, floor (every seq <= floor is acked or dropped), pending gap
    seg-<first seq>.jps     append-only segment files of records
    acked/                  only with keep_acked (audits/tests): acknowledged segments moved here
    rejected/               batches the collector refused (Reject): seq-<seq>.json, reason and batch

A record is ``header + payload`` where the header carries a magic, the payload length, a CRC32 over
(seq, time, payload), the sequence number and the creation time; the payload is the serialized Batch.
A torn or corrupt record (power cut, bad sector) is detected by its length or CRC, logged, reported to
the collector as a gap and skipped; the scan resynchronises on the next valid record.

Crash safety comes from one ordering rule: ``state.json`` (written atomically, fsynced) is updated
*before* any segment is deleted. A crash between the two leaves a segment whose records are all at or
below the floor; the next start deletes it. No crash point leaves a state the agent cannot start from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import time
import uuid
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobpulse.agent import aside
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

MAGIC = b"JPS1"
HEADER = struct.Struct("<4sIIQq")  # magic, payload length, crc32, seq, time_ms
_CRC_FIELDS = struct.Struct("<Qq")
MAX_RECORD = 64 * 1024 * 1024
STATE = "state.json"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crc(seq: int, time_ms: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_CRC_FIELDS.pack(seq, time_ms)))


def encode_record(seq: int, time_ms: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, len(payload), _crc(seq, time_ms, payload), seq, time_ms) + payload


@dataclass
class _Segment:
    path: Path
    first_seq: int
    size: int = 0
    seqs: list[int] = field(default_factory=list)  # live records only (above the floor)
    offsets: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, total length, time_ms)
    last_seq: int = 0
    last_time_ms: int = 0


@dataclass
class _Gap:
    from_ms: int = 0
    to_ms: int = 0
    batches: int = 0
    bytes: int = 0

    def add(self, from_ms: int, to_ms: int, batches: int, nbytes: int) -> None:
        if from_ms and (not self.from_ms or from_ms < self.from_ms):
            self.from_ms = from_ms
        self.to_ms = max(self.to_ms, to_ms)
        self.batches += batches
        self.bytes += nbytes


class Spool:
    """Ordered, size- and age-bounded on-disk store of batches keyed by sequence number.

    ``append`` (called only by ``Agent.emit``) gives a batch its sequence number, attaches any pending
    gap report and makes it durable before returning; ``pending`` feeds the stream; ``ack`` trims.
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int = 256 * 1024 * 1024,
        max_age: float = 7 * 86400.0,
        keep_acked: bool = False,
        segment_bytes: int | None = None,
    ) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.max_age_ms = int(max_age * 1000)
        self.keep_acked = keep_acked
        self.segment_bytes = segment_bytes or max(4096, min(4 * 1024 * 1024, max_bytes // 8))
        self.changed = asyncio.Event()
        self.dropped_batches = 0
        self.corrupt_records = 0
        self.rejected_batches = 0  # refused by the collector, kept in rejected/
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # append fd of the last segment
        self._acked = 0
        self._gap: _Gap | None = None
        self._gap_seq = 0  # the gap goes into the first record with seq >= this
        self._open()

    # -- recovery ----------------------------------------------------------
    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for leftover in [self.dir / (STATE + ".tmp"), *self.dir.glob("seg-*.tmp")]:
            leftover.unlink(missing_ok=True)  # an interrupted atomic write; the original is intact
        if self.keep_acked:
            (self.dir / "acked").mkdir(exist_ok=True)
        state = self._read_state()
        stored_gap: _Gap | None = None
        stored_gap_seq = 0
        if state is None:
            self.stream_id = uuid.uuid4().hex
            self._floor = 0
            self._write_state()
        else:
            self.stream_id = str(state["stream_id"])
            self._floor = int(state.get("floor", 0))
            if state.get("gap"):
                stored_gap = _Gap(**state["gap"])
                stored_gap_seq = int(state.get("gap_seq", 0))
        highest = self._floor
        damaged: list[_Segment] = []
        for path in sorted(self.dir.glob("seg-*.jps")):
            segment, was_damaged = self._scan(path)
            highest = max(highest, segment.last_seq)
            if not segment.seqs and segment.last_seq <= self._floor:
                self._discard(segment, "already acknowledged")
                continue
            self._segments.append(segment)
            if was_damaged:
                damaged.append(segment)
        self._acked = self._floor
        self._next_seq = highest + 1
        if stored_gap is not None and highest < stored_gap_seq:
            # Not yet written into a record before the crash: still owed to the collector.
            gap = self._gap or _Gap()
            gap.add(stored_gap.from_ms, stored_gap.to_ms, stored_gap.batches, stored_gap.bytes)
            self._gap = gap
        if self._gap is not None:
            self._gap_seq = self._next_seq
        if damaged or (stored_gap is not None and self._gap is None):
            self._write_state()  # the damage report first, then the repair
        for segment in damaged:
            self._rewrite(segment)
        log.info(
            "spool %s: stream %s, %d batches (%d bytes) waiting, next seq %d",
            self.dir,
            self.stream_id[:8],
            len(self),
            self.bytes,
            self._next_seq,
        )

    def _read_state(self) -> dict[str, Any] | None:
        path = self.dir / STATE
        segments = list(self.dir.glob("seg-*.jps"))
        try:
            state = json.loads(path.read_text())
            if not isinstance(state, dict) or not state.get("stream_id"):
                raise ValueError("no stream_id")
            return state
        except FileNotFoundError:
            if not segments:
                return None
            problem = "state.json is missing"
        except (OSError, ValueError) as exc:
            problem = f"state.json is unreadable ({exc})"
        # Without the stream id the records cannot be replayed without risking duplicates: keep them
        # aside for an operator and start a new stream.
        aside = self.dir / f"lost-{int(time.time())}"
        aside.mkdir(exist_ok=True)
        for seg in segments:
            seg.rename(aside / seg.name)
        log.error(
            "spool %s: %s; moved %d segment(s) to %s, starting a new stream",
            self.dir,
            problem,
            len(segments),
            aside,
        )
        return None

    def _scan(self, path: Path) -> tuple[_Segment, bool]:
        """Index a segment's valid records; note (and report) torn or corrupt ones."""
        data = path.read_bytes()
        try:
            first = int(path.stem.split("-", 1)[1])
        except ValueError:
            first = 0
        segment = _Segment(path, first, size=len(data))
        pos, prev_seq, damaged = 0, 0, False
        while pos < len(data):
            record = self._parse(data, pos)
            if record is not None and record[0] > prev_seq:
                seq, time_ms, total = record
                if seq > self._floor:
                    segment.seqs.append(seq)
                    segment.offsets.append((pos, total, time_ms))
                segment.last_seq, segment.last_time_ms, prev_seq = seq, time_ms, seq
                pos += total
                continue
            damaged = True
            nxt = data.find(MAGIC, pos + 1)
            while nxt != -1 and self._parse(data, nxt) is None:
                nxt = data.find(MAGIC, nxt + 1)
            end = len(data) if nxt == -1 else nxt
            log.warning(
                "spool %s: %s record at byte %d (%d bytes) skipped",
                path.name,
                "torn" if nxt == -1 else "corrupt",
                pos,
                end - pos,
            )
            self._report_damage(segment.last_time_ms, end - pos)
            pos = end
        return segment, damaged

    def _rewrite(self, segment: _Segment) -> None:
        """Rewrite a damaged segment with only its valid live records (atomically)."""
        data = segment.path.read_bytes()
        tmp = segment.path.with_suffix(".tmp")
        offsets = []
        with open(tmp, "wb") as f:
            pos = 0
            for offset, total, time_ms in segment.offsets:
                f.write(data[offset : offset + total])
                offsets.append((pos, total, time_ms))
                pos += total
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, segment.path)
        _fsync_dir(self.dir)
        segment.offsets, segment.size = offsets, pos

    @staticmethod
    def _parse(data: bytes, pos: int) -> tuple[int, int, int] | None:
        """(seq, time_ms, total length) of a valid record at pos, else None."""
        if pos + HEADER.size > len(data):
            return None
        magic, length, crc, seq, time_ms = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if magic != MAGIC or length > MAX_RECORD or end > len(data):
            return None
        if _crc(seq, time_ms, data[pos + HEADER.size : end]) != crc:
            return None
        return seq, time_ms, HEADER.size + length

    def _report_damage(self, near_ms: int, nbytes: int) -> None:
        self.corrupt_records += 1
        if self._gap is None:
            self._gap = _Gap()
        self._gap.add(near_ms, near_ms, 1, nbytes)

    # -- state -------------------------------------------------------------
    def _write_state(self) -> None:
        state = {
            "stream_id": self.stream_id,
            "floor": self._floor,
            "gap": None if self._gap is None else self._gap.__dict__,
            "gap_seq": self._gap_seq,
        }
        tmp = self.dir / (STATE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / STATE)
        _fsync_dir(self.dir)

    def _discard(self, segment: _Segment, why: str) -> None:
        """Remove a segment file; the state that makes this safe is already on disk."""
        if self._segments and self._segments[-1] is segment and self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.keep_acked and why != "dropped":
            with contextlib.suppress(FileNotFoundError):
                segment.path.rename(self.dir / "acked" / segment.path.name)
        else:
            segment.path.unlink(missing_ok=True)
        log.debug("spool: removed %s (%s)", segment.path.name, why)

    # -- producer ----------------------------------------------------------
    def next_seq(self) -> int:
        return self._next_seq

    def skip_past(self, seq: int) -> None:
        """The collector already has ``seq`` of this stream (a spool restored from an old copy):
        continue above it, or new batches would be acknowledged as replays and never stored."""
        if seq >= self._next_seq:
            log.error(
                "spool: collector has seq %d of stream %s but the spool is at %d; continuing at %d",
                seq, self.stream_id[:8], self._next_seq - 1, seq + 1,
            )  # fmt: skip
            self._next_seq = seq + 1

    def append(self, batch: pb.Batch) -> int:
        """Give ``batch`` the next sequence number and make it durable; returns the seq."""
        now = _now_ms()
        self._enforce_limits(now, batch.ByteSize() + HEADER.size + 64)
        seq = self._next_seq
        batch.seq = seq
        if self._gap is not None:
            gap = self._gap
            batch.gaps.append(
                pb.Gap(from_ms=gap.from_ms, to_ms=gap.to_ms, batches=gap.batches, bytes=gap.bytes)
            )
        record = encode_record(seq, now, batch.SerializeToString())
        segment = self._segments[-1] if self._segments else None
        if segment is None or self._fd is None or segment.size + len(record) > self.segment_bytes:
            segment = _Segment(self.dir / f"seg-{seq:020d}.jps", seq)
            self._fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            _fsync_dir(self.dir)
            self._segments.append(segment)
        os.write(self._fd, record)
        os.fdatasync(self._fd)
        segment.seqs.append(seq)
        segment.offsets.append((segment.size, len(record), now))
        segment.size += len(record)
        segment.last_seq, segment.last_time_ms = seq, now
        self._next_seq = seq + 1
        self._gap = None  # state.json may still hold it; recovery sees the record and forgets it
        self.changed.set()
        return seq

    def _enforce_limits(self, now: int, incoming: int) -> None:
        while self._segments:
            oldest = self._segments[0]
            too_big = self.bytes + incoming > self.max_bytes
            too_old = oldest.last_time_ms and oldest.last_time_ms < now - self.max_age_ms
            if not (too_big or too_old):
                return
            self._drop(oldest, "spool full" if too_big else "older than spool_max_age")

    def _drop(self, segment: _Segment, why: str) -> None:
        """Give up the oldest unacknowledged data: remember it as a gap for the collector."""
        gap = self._gap or _Gap()
        lost = 0
        start = bisect_right(segment.seqs, self._acked)
        for _seq, payload, time_ms in self._read(segment, start, len(segment.seqs)):
            carried = pb.Batch.FromString(payload).gaps
            gap.add(time_ms, time_ms, 1, len(payload))
            for g in carried:  # a dropped record may itself carry an earlier gap report
                gap.add(g.from_ms, g.to_ms, g.batches, g.bytes)
            lost += 1
        self.dropped_batches += lost
        if gap.batches:
            self._gap = gap
            self._gap_seq = self._next_seq
        self._floor = max(self._floor, segment.last_seq)
        self._write_state()
        self._segments.pop(0)
        if not self._segments and self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._discard(segment, "dropped")
        log.warning(
            "spool: %s, dropped %d unacknowledged batch(es) up to seq %d", why, lost, segment.last_seq
        )

    # -- consumer ----------------------------------------------------------
    def _read(self, segment: _Segment, start: int, stop: int) -> list[tuple[int, bytes, int]]:
        out = []
        try:
            with open(segment.path, "rb") as f:
                for i in range(start, stop):
                    offset, total, time_ms = segment.offsets[i]
                    f.seek(offset + HEADER.size)
                    out.append((segment.seqs[i], f.read(total - HEADER.size), time_ms))
        except FileNotFoundError:
            log.error("spool: segment %s vanished", segment.path.name)
        return out

    def pending(self, after: int, limit: int = 64) -> list[tuple[int, bytes]]:
        """Up to ``limit`` records with seq > after, oldest first (read from disk, not kept in memory)."""
        out: list[tuple[int, bytes]] = []
        for segment in self._segments:
            if len(out) >= limit:
                break
            if not segment.seqs or segment.seqs[-1] <= after:
                continue
            start = bisect_right(segment.seqs, after)
            stop = min(len(segment.seqs), start + limit - len(out))
            out.extend((seq, payload) for seq, payload, _ in self._read(segment, start, stop))
        return out

    def ack(self, seq: int) -> None:
        """The collector committed everything up to ``seq``: delete fully acknowledged segments."""
        if seq <= self._acked:
            return
        self._acked = seq
        done = [s for s in self._segments[:-1] if s.last_seq <= seq]
        if not done:
            return
        self._floor = max(self._floor, seq)
        self._write_state()  # first the state, then the files (see module docstring)
        for segment in done:
            self._segments.remove(segment)
            self._discard(segment, "acknowledged")

    def reject(self, seq: int, reason: str) -> Path | None:
        """The collector refused batch ``seq`` (``Reject``) and will not store it: keep a copy in
        ``rejected/seq-<seq>.json`` (the reason and the batch as JSON), count it, and report it to the
        collector as a gap in the next batch. The Ack that follows trims it like any other record.
        Returns the copy's path (None when the record is gone or the copy failed)."""
        from google.protobuf.json_format import MessageToDict

        payload, time_ms = b"", _now_ms()
        for segment in self._segments:
            i = bisect_right(segment.seqs, seq) - 1
            if i >= 0 and segment.seqs[i] == seq:
                found = self._read(segment, i, i + 1)
                if found:
                    _, payload, time_ms = found[0]
                break
        record: dict[str, Any] = {
            "stream_id": self.stream_id,
            "seq": seq,
            "reason": reason,
            "rejected_at_ms": _now_ms(),
            "created_ms": time_ms,
        }
        gap = self._gap or _Gap()
        gap.add(time_ms, time_ms, 1, len(payload))
        if not payload:
            record["batch_error"] = "not in the spool any more"
        else:
            try:
                batch = pb.Batch.FromString(payload)
                record["batch"] = MessageToDict(batch, preserving_proto_field_name=True)
                for g in batch.gaps:  # a gap report it carried is still owed
                    gap.add(g.from_ms, g.to_ms, g.batches, g.bytes)
            except Exception as exc:  # the collector could not read it either: keep the bytes
                record["batch_error"] = str(exc)
                record["payload_hex"] = payload.hex()
        self.rejected_batches += 1
        self._gap, self._gap_seq = gap, self._next_seq
        self._write_state()  # owed to the collector even across a crash
        data = json.dumps(record, indent=1).encode()
        return aside.keep(self.dir, f"seq-{seq:020d}.json", data)

    # -- introspection -----------------------------------------------------
    @property
    def bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def __len__(self) -> int:
        return sum(1 for s in self._segments for q in s.seqs if q > self._acked)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
