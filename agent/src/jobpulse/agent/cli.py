"""`jobpulse-agent`: run | exec | once | prolog | epilog.

Imports of the heavy parts (psutil, grpc, the sampler) happen inside the
commands that need them: prolog/epilog run for every Slurm job and must start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobpulse.agent import events, memtrim
from jobpulse.agent.settings import AgentSettings, load_settings
from jobpulse.common import validate
from jobpulse.common.config import ConfigError

log = logging.getLogger("jobpulse.agent")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config (default /etc/jobpulse/agent.toml)")
    parser.add_argument(
        "--state-dir", type=Path, help="spool and event directory (default /var/lib/jobpulse)"
    )
    parser.add_argument("--socket", type=Path, help="agent event socket (default /run/jobpulse/agent.sock)")
    parser.add_argument("--cgroup-root", type=Path, help="cgroup mount to walk (default /sys/fs/cgroup)")


def _settings(args: argparse.Namespace) -> AgentSettings:
    return load_settings(
        args.config,
        state_dir=args.state_dir,
        socket=args.socket,
        cgroup_root=args.cgroup_root,
        collector=getattr(args, "collector", None),
        tick=getattr(args, "tick", None),
        node=getattr(args, "node", None),
        cluster=getattr(args, "cluster", None),
    )


def cmd_run(args: argparse.Namespace) -> int:
    # Before asyncio and grpc are imported and grpc starts its threads (see memtrim).
    memtrim.without_python_ssl()
    memtrim.limit_arenas()
    import asyncio

    from jobpulse.agent.daemon import Agent

    settings = _settings(args)
    logging.getLogger().setLevel(settings.log_level.upper())
    agent = Agent(settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    asyncio.run(main())
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    """Run CMD as a monitored job: own cgroup when possible, else a tracked process tree."""
    from jobpulse.agent.cgroupctl import JobCgroup

    settings = _settings(args)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("jobpulse-agent exec: no command given (use: exec --job-id ID -- CMD ...)", file=sys.stderr)
        return 2
    cgroup: JobCgroup | None = JobCgroup(settings.cgroup_root, args.job_id)
    try:
        assert cgroup is not None
        cgroup.create()
    except OSError as exc:
        log.warning("no cgroup for job %s (%s); tracking its process tree instead", args.job_id, exc)
        cgroup = None
    user = pwd.getpwuid(os.getuid()).pw_name
    start = time.time()
    child = subprocess.Popen(command, preexec_fn=cgroup.attach if cgroup else None)
    forward = lambda signum, _frame: child.send_signal(signum)  # noqa: E731
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    meta = {
        "job_id": args.job_id,
        "user": user,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "job_name": args.name or os.path.basename(command[0]),
        "nodelist": settings.node,
        "num_nodes": 1,
        "cpus_on_node": len(os.sched_getaffinity(0)),
        "num_tasks": 1,
        "start_time": int(start),
        "source": "exec",
        "partition": "local",
        "state": "RUNNING",
    }
    outcome = events.deliver(
        settings.socket,
        settings.events_dir,
        {"type": "start", "meta": meta, "pid": child.pid, "cgroup": cgroup is not None},
    )
    log.info("job %s started (%s), event %s", args.job_id, "cgroup" if cgroup else "process tree", outcome)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    code = child.returncode
    stop_meta = {
        "job_id": args.job_id,
        "end_time": int(time.time()),
        "exit_code": code if code >= 0 else 128 - code,
        "state": "COMPLETED" if code == 0 else ("CANCELLED" if code < 0 else "FAILED"),
        "source": "exec",
    }
    rusage = {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss_kb": usage.ru_maxrss}
    events.deliver(
        settings.socket,
        settings.events_dir,
        {"type": "stop", "meta": stop_meta, "rusage": rusage},
        timeout=5.0,
    )
    if cgroup is not None:
        cgroup.remove()
    return code if code >= 0 else 128 - code


def _clean(value: float) -> float | str | None:
    """JSON has no NaN/inf: not measured -> null, unlimited -> "unlimited"."""
    if math.isnan(value):
        return None
    return "unlimited" if math.isinf(value) else value


def cmd_once(args: argparse.Namespace) -> int:
    """One sample of everything (jobs, steps, tasks, GPUs, node), for an admin debugging a node.

    Two readings ``--interval`` seconds apart, so cores used and CPU efficiency
    are real rates rather than blanks.
    """
    from google.protobuf.json_format import MessageToDict
    from jobpulse.agent.sampler import Sampler, gpu_source
    from jobpulse.agent.sources.base import VALUE_FIELDS
    from jobpulse.agent.sources.node import NodeSource
    from jobpulse.agent.wire import GPU_VALUE_FIELDS, gpu_infos, node_sample

    settings = _settings(args)
    sampler = Sampler(
        settings.cgroup_root,
        NodeSource(),
        gpu_source=gpu_source(settings),
        state_dir=settings.state_dir,
        proc_root=settings.proc_root,
        node=settings.node,
    )
    if args.interval > 0:
        sampler.collect()
        time.sleep(args.interval)
    readings = sampler.collect()
    gpus = sampler.sample_gpus(readings)
    found = sampler.discover(tasks=True)
    node = sampler.node_source.sample() if sampler.node_source else None
    sampler.close()

    jobs: list[dict[str, object]] = []
    for r in readings:
        row: dict[str, object] = {"job_id": r.job_id, "step": r.step or None, "time_ms": r.time_ms}
        row.update({name: _clean(getattr(r, name)) for name in VALUE_FIELDS})
        row["cpu_efficiency"] = _clean(r.cpu_efficiency)
        job = found.get(r.job_id)
        if job is not None and job.sluid:
            row["sluid"] = job.sluid
        if job is not None and r.step:
            row["tasks"] = job.tasks.get(r.step, [])
        jobs.append(row)
    gpu_rows: list[dict[str, object]] = [
        {"uuid": g.uuid, "job_id": g.job_id or None}
        | {name: _clean(getattr(g, name)) for name in GPU_VALUE_FIELDS}
        for g in gpus
    ]
    source = sampler.gpu_source
    doc = {
        "node": settings.node,
        "cgroup_root": str(settings.cgroup_root),
        "jobs": jobs,
        "gpu_devices": [MessageToDict(i, preserving_proto_field_name=True) for i in gpu_infos(source.infos())]
        if source
        else [],
        "gpus": gpu_rows,
        "node_sample": MessageToDict(node_sample(node), preserving_proto_field_name=True) if node else None,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    from jobpulse.agent.oncetext import render_once

    sys.stdout.write(render_once(doc))
    return 0


def cmd_hook(args: argparse.Namespace) -> int:
    """slurmd's Prolog/Epilog: hand the job event to the agent. Always 0: a failing hook drains the node."""
    from jobpulse.agent import hooks

    try:
        settings = _settings(args)
    except Exception:
        hooks.setup_logging()
        log.exception("jobpulse-agent %s: cannot read the settings", args.command_name)
        return 0
    try:
        hooks.setup_logging(settings.state_dir)
        hooks.run_hook(args.command_name, settings.socket, settings.state_dir)
    except Exception:
        log.exception("jobpulse-agent %s failed", args.command_name)
    return 0


def job_id(text: str) -> str:
    """``--job-id``: a Slurm job number (ASCII digits, 1 .. 2**32-1), as the collector stores it."""
    return str(validate.job_number(text, "--job-id"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobpulse-agent", description="jobpulse node agent")
    sub = parser.add_subparsers(dest="command_name", required=True)
    run = sub.add_parser("run", help="sample jobs every tick and stream to the collector")
    _common(run)
    run.add_argument("--collector", help="collector gRPC address host:port (default 127.0.0.1:50051)")
    run.add_argument("--tick", type=float, help="seconds between samples (default 10)")
    run.add_argument("--node", help="node name (default: short hostname)")
    run.add_argument("--cluster", help="cluster name (default: default)")
    run.set_defaults(func=cmd_run)
    ex = sub.add_parser("exec", help="run a command as a monitored job (machines without Slurm)")
    _common(ex)
    ex.add_argument(
        "--job-id",
        required=True,
        type=job_id,
        help="numeric job id (1 .. 4294967295, as Slurm's)",
    )
    ex.add_argument("--name", help="job name (default: the command's name)")
    ex.add_argument(
        "--node",
        help="the node the job runs on, named as its agent is (default: the config's node, else short hostname)",
    )
    ex.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG ...]")
    ex.set_defaults(func=cmd_exec)
    once = sub.add_parser("once", help="print one sample of every job and the node")
    _common(once)
    once.add_argument("--json", action="store_true", help="machine-readable output")
    once.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between the two readings that give rates (default 1)",
    )
    once.set_defaults(func=cmd_once)
    for kind in ("prolog", "epilog"):
        hook = sub.add_parser(
            kind, help=f"slurmd {kind.capitalize()}: report job {'start' if kind == 'prolog' else 'end'}"
        )
        _common(hook)
        hook.set_defaults(func=cmd_hook)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        if argv[:1] in (["prolog"], ["epilog"]):
            return 0  # a hook never fails the job, even when called wrongly (argparse said why)
        raise
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"jobpulse-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
