"""`jobpulse-agent run`: tick loop, event socket and the stream to the collector in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from typing import Any

import psutil
from jobpulse.agent import aside, events, jobmeta, memtrim
from jobpulse.agent.sampler import Sampler, gpu_source
from jobpulse.agent.settings import AgentSettings
from jobpulse.agent.sources.base import JobReading
from jobpulse.agent.sources.node import NodeSource
from jobpulse.agent.sources.proctree import ProcTree
from jobpulse.agent.spool import Spool
from jobpulse.agent.stream import StreamClient
from jobpulse.agent.wire import encode_jobs, gpu_infos
from jobpulse.common import validate
from jobpulse.common.timeutil import now_ms
from jobpulse.common.version import __version__
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

_META_FIELDS = frozenset(pb.JobMeta.DESCRIPTOR.fields_by_name)
PID_MAX = 2**22  # Linux's PID_MAX_LIMIT


def meta_from_dict(data: dict[str, Any]) -> pb.JobMeta:
    """Build JobMeta from checked fields (``jobmeta.clean``), ignoring unknown keys (newer hooks, older
    agent); a value protobuf still refuses is left out rather than raised."""
    meta = pb.JobMeta()
    for key, value in data.items():
        if key not in _META_FIELDS or value is None:
            continue
        try:
            if key == "gpus":
                meta.gpus.extend(str(v) for v in value)
            else:
                setattr(meta, key, type(getattr(meta, key))(value))
        except (TypeError, ValueError, OverflowError) as exc:
            log.warning("job meta: leaving out %s (%s)", key, exc)
    return meta


def _seconds(value: Any) -> float:
    """A figure of exec's rusage, or NaN when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        number = float(value)
    except OverflowError:
        return math.nan
    return number if math.isfinite(number) and number >= 0 else math.nan


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.sampler = Sampler(
            settings.cgroup_root,
            NodeSource(),
            gpu_source=gpu_source(settings),
            state_dir=settings.state_dir,
            proc_root=settings.proc_root,
            node=settings.node,
        )
        self.spool = Spool(
            settings.spool_dir,
            max_bytes=settings.spool_max_bytes,
            max_age=settings.spool_max_age,
            keep_acked=settings.spool_keep_acked,
        )
        self.paused = False
        self.client = StreamClient(
            settings.collector,
            self.spool,
            self.hello,
            token=settings.token,
            on_control=self.on_control,
            tls=settings.client_tls(),
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._trimmer = memtrim.Trimmer()

    def hello(self) -> pb.Hello:
        return pb.Hello(
            node=self.settings.node,
            cluster=self.settings.cluster,
            agent_version=__version__,
            cpus=os.cpu_count() or 0,
            memory_bytes=psutil.virtual_memory().total,
            stream_id=self.spool.stream_id,
            tick_seconds=self.settings.tick,
            boot_time=int(psutil.boot_time()),
            gpus=gpu_infos(self.sampler.gpu_source.infos()) if self.sampler.gpu_source else [],
        )

    def on_control(self, control: pb.Control) -> None:
        if control.action == pb.Control.PAUSE:
            self.paused = True
        elif control.action == pb.Control.RESUME:
            self.paused = False
        elif control.action == pb.Control.SET_TICK and control.tick_seconds > 0:
            self.settings.tick = control.tick_seconds
        self._wake.set()

    def emit(self, batch: pb.Batch) -> int:
        """Give the batch its sequence number and put it in the spool (the only way out)."""
        return self.spool.append(batch)

    async def handle_event(self, request: dict[str, Any]) -> dict[str, Any]:
        """One job event from the socket or the events directory; every field is checked first
        (``jobmeta.clean``): a bad job id refuses the event, another bad field is left out."""
        kind = request.get("type")
        if kind not in ("start", "stop"):
            return {"ok": False, "error": f"unknown event type {validate.safe_for_log(repr(kind))}"}
        raw = request.get("meta")
        if not isinstance(raw, dict):
            return {"ok": False, "error": "meta must be an object with a job_id"}
        try:
            fields, dropped = jobmeta.clean(raw)
        except validate.InvalidField as exc:
            log.warning("refused %s event: meta.%s", kind, exc)
            return {"ok": False, "error": f"meta.{exc}"}
        job_id = fields["job_id"]
        for reason in dropped:
            log.warning("%s event of job %s: ignoring meta.%s", kind, job_id, reason)
        meta = meta_from_dict(fields)
        meta.cluster = meta.cluster or self.settings.cluster
        batch = pb.Batch()
        if kind == "start":
            meta.start_time = meta.start_time or int(now_ms() / 1000)
            self.sampler.job_started(fields)
            pid = request.get("pid")
            if pid is not None and not request.get("cgroup"):
                try:
                    self.sampler.tracked[job_id] = ProcTree(job_id, validate.integer(pid, "pid", 1, PID_MAX))
                except validate.InvalidField as exc:
                    log.warning("start event of job %s: ignoring %s", job_id, exc)
                except psutil.NoSuchProcess:
                    log.info("job %s: process %s already gone at start", job_id, pid)
            batch.events.append(pb.JobEvent(kind=pb.JobEvent.START, time_ms=now_ms(), meta=meta))
            encode_jobs(self.sampler.collect(only=job_id), batch.jobs)
        else:
            meta.end_time = meta.end_time or int(now_ms() / 1000)
            # The final sample, taken before the job's cgroup disappears.
            final = self.sampler.collect(only=job_id)
            rusage = request.get("rusage")
            if not final and isinstance(rusage, dict):
                final = [self._from_rusage(job_id, rusage)]
            kills = self.sampler.final_oom_kills(job_id)
            if kills is not None:  # counted in task cgroups that are gone by now (cgroup v1)
                whole = next((r for r in final if not r.step), None)
                if whole is not None:
                    whole.oom_kills = kills if not kills <= whole.oom_kills else whole.oom_kills  # NaN too
                else:
                    # Within the job's time (the epilog's whole second), where its summary looks.
                    stamp = min(now_ms(), meta.end_time * 1000)
                    final.append(JobReading(job_id=job_id, time_ms=stamp, oom_kills=kills))
            encode_jobs(final, batch.jobs)
            batch.events.append(pb.JobEvent(kind=pb.JobEvent.STOP, time_ms=now_ms(), meta=meta))
            self.sampler.forget(job_id)
        seq = self.emit(batch)
        reply: dict[str, Any] = {"ok": True, "seq": seq}
        if dropped:
            reply["ignored"] = dropped
        return reply

    @staticmethod
    def _from_rusage(job_id: str, rusage: dict[str, Any]) -> JobReading:
        """exec's own accounting of a job tracked without a cgroup (its children were waited for)."""
        reading = JobReading(job_id=job_id, time_ms=now_ms())
        reading.cpu_user_seconds = _seconds(rusage.get("utime"))
        reading.cpu_system_seconds = _seconds(rusage.get("stime"))
        reading.mem_peak_bytes = _seconds(rusage.get("maxrss_kb")) * 1024
        return reading

    async def drain_spooled_events(self) -> None:
        """Events the hooks spooled while the agent was away, oldest first. One that cannot be
        handled is set aside (``events/rejected/``, with the reason), never replayed into a crash."""
        for path, request in events.pending(self.settings.events_dir):
            try:
                reply = await self.handle_event(request)
            except Exception as exc:
                log.exception("handling spooled event %s failed", path)
                reply = {"ok": False, "error": f"the agent failed on it: {exc!r}"}
            if reply.get("ok"):
                path.unlink(missing_ok=True)
                continue
            moved = aside.move(path, str(reply.get("error")))
            log.error("set aside spooled event %s: %s", moved or path, reply.get("error"))

    async def tick_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.drain_spooled_events()
            except Exception:
                log.exception("reading the events directory %s failed", self.settings.events_dir)
            if not self.paused:
                try:
                    self.emit(self.sampler.tick())
                except Exception:
                    log.exception("tick failed")
                self._trimmer.tick()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.tick)

    async def run(self) -> None:
        server = await events.serve(self.settings.socket, self.handle_event)
        log.info(
            "agent %s on node %s: sending to %s, tick %.1fs, events on %s",
            __version__,
            self.settings.node,
            self.settings.collector,
            self.settings.tick,
            self.settings.socket,
        )
        stream_task = asyncio.create_task(self.client.run())
        try:
            await self.tick_loop()
        finally:
            self.client.stop()
            server.close()
            await asyncio.gather(stream_task, return_exceptions=True)
            self.spool.close()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
