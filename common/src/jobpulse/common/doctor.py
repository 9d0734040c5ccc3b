"""What ``jobpulse-agent doctor`` and ``jobpulse-collector doctor`` have in common: findings and the report.

A doctor answers one question before an admin trusts a host: what will break, and what to do about it.
Each check gives one :class:`Finding`; the report is one line per finding (the fix on the next line),
and the exit status lets scripts (config management, a node health check) act on it without parsing:
0 when everything passed, 1 when something deserves a look (warnings), 2 when something is broken.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class Status(StrEnum):
    """How bad a finding is; ``info`` is a fact that needs nothing done (no GPU on a CPU node)."""

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


EXIT_OK, EXIT_WARN, EXIT_FAIL = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    """One check's result: ``message`` says what was found, ``fix`` what to do (empty when nothing)."""

    check: str
    status: Status
    message: str
    fix: str = ""


def exit_status(findings: Iterable[Finding]) -> int:
    """2 if any check failed, 1 if any warned, else 0."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return EXIT_FAIL
    return EXIT_WARN if Status.WARN in statuses else EXIT_OK


def render(title: str, findings: list[Finding]) -> str:
    """The human report: a title, a line per check (status, check, what was found), the fix indented."""
    width = max((len(f.check) for f in findings), default=0)
    lines = [title]
    for f in findings:
        lines.append(f"{f.status.value.upper():<5} {f.check:<{width}}  {f.message}")
        if f.fix:
            lines.append(f"{'':<5} {'':<{width}}  -> {f.fix}")
    fails = sum(f.status is Status.FAIL for f in findings)
    warns = sum(f.status is Status.WARN for f in findings)
    lines.append(f"{fails} failed, {warns} warning(s), {len(findings) - fails - warns} passed")
    return "\n".join(lines)


def to_json(findings: list[Finding]) -> str:
    """``--json``: the findings as a list of objects, for scripts that want more than the exit status."""
    return json.dumps([asdict(f) | {"status": f.status.value} for f in findings], indent=2)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB': free-space messages are read by people."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop always returns


def free_space(path: Path) -> tuple[Path, int, int]:
    """(the existing directory measured, bytes free to unprivileged writers, filesystem size) for ``path``.

    ``path`` may not exist yet (a state directory created at first start): its nearest existing parent
    is the filesystem it will be on. ``f_bavail`` rather than ``f_bfree``: the daemons' files are what
    must fit, and the collector runs unprivileged.
    """
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    return probe, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def disk_finding(check: str, path: Path, what: str, want: int, fix: str) -> Finding:
    """Free space where ``what`` lives: fail when (almost) full, warn when less than ``want`` bytes are free.

    "Almost full" is under 16 MiB or 1 % of the filesystem, whichever is smaller: SQLite and the
    spool need room for a transaction or a segment before they can even report trouble.
    """
    probe, free, total = free_space(path)
    floor = min(16 * 1024 * 1024, total // 100)
    text = f"{human_bytes(free)} free of {human_bytes(total)} on the filesystem of {probe} ({what})"
    if free <= floor:
        return Finding(check, Status.FAIL, f"full: {text}", fix)
    if free < want:
        return Finding(check, Status.WARN, f"low: {text}; less than {human_bytes(want)}", fix)
    return Finding(check, Status.OK, text)
