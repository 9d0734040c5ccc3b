"""`jobpulse-agent once` as an admin reads it: human units, each job followed by its steps, and a summary
line first when a node runs hundreds of cgroups (then only the busiest jobs are listed; ``--json`` has all).

A pure function of the document ``--json`` prints, so both outputs say the same.
"""

from __future__ import annotations

from typing import Any

from jobpulse.common.units import human_bytes

MANY = 40  # more job/step rows than this: a summary line and the busiest jobs only
SHOWN_WHEN_MANY = 15


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cores(row: dict[str, Any]) -> str:
    used, given = _num(row.get("cpu_cores")), _num(row.get("alloc_cpus"))
    used_s = f"{used:.2f}" if used is not None else "-"
    return f"{used_s} of {given:g} cores" if given is not None else f"{used_s} cores"


def _bytes(value: Any) -> str:
    return "unlimited" if value == "unlimited" else human_bytes(_num(value))


def _line(row: dict[str, Any], indent: str) -> str:
    name = f"step {row['step']}" if row.get("step") else f"job {row['job_id']}"
    user, system = _num(row.get("cpu_user_seconds")), _num(row.get("cpu_system_seconds"))
    cpu = f"cpu {user + system:.1f} s" if user is not None and system is not None else "cpu -"
    mem = f"mem {_bytes(row.get('mem_current_bytes'))} (peak {_bytes(row.get('mem_peak_bytes'))}, limit {_bytes(row.get('mem_limit_bytes'))})"
    extra = ""
    if _num(row.get("oom_kills")):
        extra += f", {int(row['oom_kills'])} OOM kill(s)"
    if row.get("tasks"):
        extra += f", tasks {', '.join(row['tasks'])}"
    return f"{indent}{name}: {_cores(row)}, {cpu}, {mem}{extra}"


def render_once(doc: dict[str, Any]) -> str:
    """The text ``jobpulse-agent once`` prints."""
    rows: list[dict[str, Any]] = doc["jobs"]
    jobs = {r["job_id"] for r in rows}
    steps = sum(1 for r in rows if r.get("step"))
    lines = [f"node {doc['node']}: {len(jobs)} job(s), {steps} step(s) under {doc['cgroup_root']}"]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_job.setdefault(r["job_id"], []).append(r)
    order = sorted(by_job, key=lambda j: (len(j), j))  # numeric order for plain ids
    if len(rows) > MANY:
        tops = [r for r in rows if not r.get("step")]
        cores = sum(_num(r.get("cpu_cores")) or 0 for r in tops)
        mem = sum(_num(r.get("mem_current_bytes")) or 0 for r in tops)
        lines.append(
            f"  {len(rows)} cgroups: {cores:.1f} cores in use, {human_bytes(mem)} of memory; the "
            f"{SHOWN_WHEN_MANY} busiest jobs follow (--json for all)"
        )
        order = sorted(order, key=lambda j: -(_num(by_job[j][0].get("cpu_cores")) or 0))[:SHOWN_WHEN_MANY]
    for job in order:
        members = sorted(by_job[job], key=lambda r: (bool(r.get("step")), str(r.get("step") or "")))
        for r in members:
            lines.append(_line(r, "    " if r.get("step") else "  "))
    devices = doc.get("gpu_devices") or []
    if not devices:
        lines.append("GPUs: none (no NVML or no device)")
    for g in doc.get("gpus") or []:
        owner = f"job {g['job_id']}" if g.get("job_id") else "no job"
        util = _num(g.get("util_percent"))
        watts = _num(g.get("power_watts"))
        lines.append(
            f"  GPU {g['uuid']} ({owner}): util {util:.0f}%"
            if util is not None
            else f"  GPU {g['uuid']} ({owner}): util -"
        )
        lines[-1] += f", mem {_bytes(g.get('mem_used_bytes'))} of {_bytes(g.get('mem_total_bytes'))}"
        lines[-1] += f", {watts:.0f} W" if watts is not None else ""
    node = doc.get("node_sample") or {}
    if node:
        lines.append(
            f"node: mem {human_bytes(_num(node.get('mem_used_bytes')))} of {human_bytes(_num(node.get('mem_total_bytes')))}"
            + (f", load {_num(node.get('load1')):.2f}" if _num(node.get("load1")) is not None else "")
        )
    return "\n".join(lines) + "\n"
