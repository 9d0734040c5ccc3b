"""``jobpulse-agent doctor``: check a compute node before trusting its numbers.

What breaks deployments, each checked the way the agent itself would meet it: the cgroup tree the
sampler walks (version and the Slurm layout under it), slurm.conf's Prolog/Epilog (the job events) and
cgroup settings, NVML, the collector reached with this node's token and TLS settings (and its clock),
and the spool (room on its disk, what waits in it). Nothing is changed on the node: files are only read,
and the collector is asked to open an ingest stream that sends nothing, which it accepts or refuses on
the token alone and then closes without storing anything.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from jobpulse.agent.settings import AgentSettings
from jobpulse.common.doctor import Finding, Status, disk_finding, human_bytes

SLURM_CONF_CANDIDATES = (
    Path("/etc/slurm/slurm.conf"),
    Path("/etc/slurm-llnl/slurm.conf"),
    Path("/run/slurm/conf/slurm.conf"),  # configless slurmd keeps its fetched copy here
    Path("/var/spool/slurmd/conf-cache/slurm.conf"),
)
HOOKS = Path("/opt/jobpulse/slurm")  # where the package puts the prolog/epilog scripts
CLOCK_WARN_S = 1.0  # sample times come from the node's clock: a skew shifts a job's series
CLOCK_FAIL_S = 30.0  # ... by enough to misplace samples across job starts/ends and rollup minutes
TIME_METADATA = "jobpulse-time-ms"  # the collector's clock, sent when it accepts an ingest stream
# Lines of slurm.conf that describe nodes, partitions ... (their Key=Value pairs are not global settings).
_ENTITY_KEYS = {"nodename", "partitionname", "nodeset", "downnodes", "frontendname", "switchname"}


def check_cgroups(root: Path) -> list[Finding]:
    """Which cgroup version is mounted at ``root``, and whether Slurm's job cgroups are where we look."""
    try:
        entries = sorted(p.name for p in root.iterdir())
    except OSError as exc:
        entries, problem = [], str(exc)
    else:
        problem = "it is empty"
    if not entries:
        return [
            Finding(
                "cgroup",
                Status.FAIL,
                f"no cgroup hierarchy at {root}: {problem}; no job can be measured",
                "mount cgroup2 at /sys/fs/cgroup (or cgroup v1 controllers), or set cgroup_root in agent.toml",
            )
        ]
    if (root / "cgroup.controllers").exists():
        controllers = set((root / "cgroup.controllers").read_text().split())
        missing = {"cpu", "memory"} - controllers
        version = f"cgroup v2 at {root} (controllers: {' '.join(sorted(controllers)) or 'none'})"
        found = [
            Finding(
                "cgroup",
                Status.WARN if missing else Status.OK,
                version + (f"; {', '.join(sorted(missing))} not available" if missing else ""),
                "enable the cpu and memory controllers (kernel cmdline, systemd)" if missing else "",
            )
        ]
        scopes = sorted(root.glob("system.slice/*slurmstepd.scope"))
        layout = [str(s.relative_to(root)) for s in scopes]
        jobs = sum(1 for s in scopes for j in s.iterdir() if j.is_dir() and j.name != "system")
    else:
        v1 = [c for c in ("cpuacct", "cpu,cpuacct", "memory") if (root / c).is_dir()]
        if not v1:
            return [
                Finding(
                    "cgroup",
                    Status.FAIL,
                    f"{root} holds neither a cgroup v2 hierarchy (cgroup.controllers) nor v1 controllers "
                    "(cpuacct, memory)",
                    "point cgroup_root in agent.toml at the cgroup mount (usually /sys/fs/cgroup)",
                )
            ]
        found = [Finding("cgroup", Status.OK, f"cgroup v1 at {root} (controllers: {', '.join(v1)})")]
        slurm = sorted(d for c in v1 for d in (root / c).glob("slurm*") if d.is_dir())
        layout = sorted({str(d.relative_to(root)) for d in slurm})
        jobs = len({j.name for d in slurm for j in d.glob("uid_*/job_*")})
    if layout:
        found.append(
            Finding("slurm-cgroups", Status.OK, f"Slurm's cgroups: {', '.join(layout)} ({jobs} job(s) now)")
        )
    else:
        found.append(
            Finding(
                "slurm-cgroups",
                Status.WARN,
                f"no Slurm job cgroups under {root} (no slurmstepd.scope / slurm_* directory)",
                "start slurmd with ProctrackType=proctrack/cgroup and TaskPlugin=task/cgroup (the directory "
                "appears with slurmd on cgroup v2, with the first job on v1); jobs run with "
                "`jobpulse-agent exec` are measured anyway",
            )
        )
    return found


def find_slurm_conf(explicit: Path | None = None) -> Path | None:
    """slurm.conf as slurmd finds it: --slurm-conf, $SLURM_CONF, then the usual and configless places."""
    if explicit is not None:
        return explicit
    if os.environ.get("SLURM_CONF"):
        return Path(os.environ["SLURM_CONF"])
    return next((p for p in SLURM_CONF_CANDIDATES if p.is_file()), None)


def parse_slurm_conf(path: Path, _depth: int = 0) -> dict[str, str]:
    """Global ``Key=Value`` settings of a slurm.conf (keys lowercased, as Slurm ignores case).

    ``Include`` files are followed (relative to the file's directory); node and partition lines skipped.
    """
    settings: dict[str, str] = {}
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0].lower() == "include" and len(words) > 1 and _depth < 8:
            for name in sorted(glob.glob(str(path.parent / words[1]))):
                settings.update(parse_slurm_conf(Path(name), _depth + 1))
            continue
        pairs = [w.split("=", 1) for w in words if "=" in w]
        if not pairs or pairs[0][0].lower() in _ENTITY_KEYS:
            continue
        for key, value in pairs:
            settings[key.lower()] = value
    return settings


def _runs_jobpulse(hook: str, kind: str) -> list[str]:
    """The files slurmd would run for a Prolog/Epilog value that hand the event to jobpulse-agent."""
    ours = []
    for name in sorted(glob.glob(hook)):
        path = Path(name)
        try:
            if "jobpulse" in path.resolve().name or f"jobpulse-agent {kind}" in path.read_text(
                errors="replace"
            ):
                ours.append(name)
        except OSError:
            continue
    return ours


def check_slurm_conf(conf: Path | None) -> list[Finding]:
    """Prolog/Epilog run jobpulse's hooks; PrologFlags, ProctrackType and TaskPlugin suit the sampler."""
    if conf is None or not conf.is_file():
        where = conf or " or ".join(str(p) for p in SLURM_CONF_CANDIDATES[:2])
        return [
            Finding(
                "slurm.conf",
                Status.WARN,
                f"no slurm.conf at {where}: job starts and ends are not reported by Slurm's hooks",
                "on a Slurm node, pass --slurm-conf PATH (or set SLURM_CONF); elsewhere use `jobpulse-agent exec`",
            )
        ]
    try:
        settings = parse_slurm_conf(conf)
    except OSError as exc:
        return [Finding("slurm.conf", Status.FAIL, f"cannot read {conf}: {exc}", "run doctor as root")]
    found: list[Finding] = []
    for kind in ("prolog", "epilog"):
        name = kind.capitalize()
        hook = settings.get(kind, "")
        link = f"ln -s {HOOKS}/{kind}.d/50-jobpulse.sh /etc/slurm/{kind}.d/"
        if not hook:
            found.append(
                Finding(
                    kind,
                    Status.FAIL,
                    f"{conf} sets no {name}=: jobpulse never hears of job {'starts' if kind == 'prolog' else 'ends'} "
                    "from slurmd (only the collector's reconciler, late)",
                    f"add {name}=/etc/slurm/{kind}.d/* to slurm.conf and {link}; then scontrol reconfigure",
                )
            )
            continue
        ours = _runs_jobpulse(hook, kind)
        if ours:
            found.append(Finding(kind, Status.OK, f"{name}={hook} runs {', '.join(ours)}"))
        else:
            found.append(
                Finding(
                    kind,
                    Status.FAIL,
                    f"{name}={hook} runs no jobpulse hook (no matching file calls jobpulse-agent {kind})",
                    f"{link} (with {name}=/etc/slurm/{kind}.d/*)",
                )
            )
    flags = {f.strip().lower() for f in settings.get("prologflags", "").split(",") if f.strip()}
    if "alloc" in flags:
        found.append(Finding("prologflags", Status.OK, f"PrologFlags={settings['prologflags']}"))
    else:
        found.append(
            Finding(
                "prologflags",
                Status.WARN,
                f"PrologFlags={settings.get('prologflags', '(unset)')} lacks Alloc: the prolog runs at a "
                "job's first step, so its start is reported late (never, for a job with no step)",
                "set PrologFlags=Alloc,Contain",
            )
        )
    proctrack = settings.get("proctracktype", "(unset)")
    tasks = settings.get("taskplugin", "(unset)")
    if proctrack == "proctrack/cgroup" and "task/cgroup" in tasks:
        found.append(Finding("slurm-cgroup", Status.OK, f"ProctrackType={proctrack}, TaskPlugin={tasks}"))
    else:
        found.append(
            Finding(
                "slurm-cgroup",
                Status.WARN,
                f"ProctrackType={proctrack}, TaskPlugin={tasks}: Slurm may not give each job its own cgroup, "
                "so per-job figures can be missing or merged",
                "set ProctrackType=proctrack/cgroup and TaskPlugin=task/affinity,task/cgroup",
            )
        )
    return found


def check_nvml(settings: AgentSettings) -> Finding:
    """Whether GPU metrics will come: NVML's library and devices, as the sampler will find them."""
    if not settings.gpus:
        return Finding("nvml", Status.INFO, "GPUs off in the settings (gpus = false): NVML is never loaded")
    from jobpulse.agent.sources.nvml import NvmlSource, nvml_library_present

    if not nvml_library_present():
        return Finding(
            "nvml",
            Status.INFO,
            "no NVML library (libnvidia-ml.so.1): no GPU data from this node (right for a CPU node)",
            "",
        )
    source = NvmlSource()
    try:
        if not source.start():
            return Finding(
                "nvml",
                Status.WARN,
                "NVML library present but no GPU usable (driver not loaded, or no device)",
                "check nvidia-smi on this node; load the driver",
            )
        return Finding("nvml", Status.OK, f"NVML: {len(source.devices)} GPU(s) / MIG instance(s)")
    finally:
        source.close()


async def _probe(settings: AgentSettings, timeout: float) -> tuple[str, str, float | None, float]:
    """Open an ingest stream that sends nothing: (status code name, details, collector ms, our mid ms)."""
    import grpc
    from jobpulse.proto.v1 import ingest_pb2 as pb
    from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

    async def nothing() -> AsyncIterator[pb.AgentMessage]:
        return
        yield  # pragma: no cover - makes this an async generator

    tls = settings.client_tls()
    channel = (
        grpc.aio.secure_channel(settings.collector, tls.credentials())
        if tls
        else grpc.aio.insecure_channel(settings.collector)
    )
    metadata = (("authorization", f"Bearer {settings.token}"),) if settings.token else ()
    async with channel:
        sent = time.time() * 1000
        call = pb_grpc.IngestStub(channel).Stream(nothing(), metadata=metadata, timeout=timeout)
        initial = await call.initial_metadata()
        received = time.time() * 1000
        code = await call.code()
        details = await call.details() or ""
        # A call that ends with no message may arrive as one "trailers-only" response: the collector's
        # initial metadata then comes with the trailers (same moment, so the measurement holds).
        theirs = dict(initial or ()).get(TIME_METADATA) or dict(await call.trailing_metadata() or ()).get(
            TIME_METADATA
        )
    collector_ms = float(theirs) if isinstance(theirs, str) and theirs.isdigit() else None
    return code.name, details, collector_ms, (sent + received) / 2


def check_collector(settings: AgentSettings, timeout: float = 5.0) -> list[Finding]:
    """The collector reached as the agent reaches it (address, TLS, token), and its clock against ours."""
    target = settings.collector
    tls = "TLS" if settings.client_tls() else "plaintext"
    try:
        code, details, theirs, ours = asyncio.run(_probe(settings, timeout))
    except OSError as exc:  # a TLS file that cannot be read
        return [Finding("collector", Status.FAIL, f"cannot set up TLS: {exc}", "fix tls_ca/tls_cert/tls_key")]
    skipped = Finding("clock", Status.INFO, "not measured: the collector did not answer")
    if code == "UNAUTHENTICATED":
        return [
            Finding(
                "collector",
                Status.FAIL,
                f"{target} ({tls}) refused this node's token ({'none set' if not settings.token else 'wrong'})",
                "set token in /etc/jobpulse/agent.toml to the collector's token (collector.toml)",
            ),
            skipped,
        ]
    if code != "OK":
        lowered = details.lower()
        if any(word in lowered for word in ("ssl", "handshake", "certificate", "tls")):
            fix = (
                "TLS failed: tls_ca must be the CA that signed the collector's certificate, the collector's "
                "name as written in `collector` must be in its subjectAltName, and under mutual TLS the node "
                "needs tls_cert/tls_key"
            )
        else:
            fix = (
                f"start jobpulse-collector, or fix `collector` in agent.toml ({target}); check its "
                "grpc_listen and the firewall"
            )
        return [
            Finding(
                "collector", Status.FAIL, f"cannot reach {target} ({tls}): {code} {details}".strip(), fix
            ),
            skipped,
        ]
    found = [Finding("collector", Status.OK, f"{target} ({tls}) accepts this node's token")]
    if theirs is None:
        found.append(Finding("clock", Status.INFO, "not measured: this collector does not send its time"))
        return found
    skew = (ours - theirs) / 1000
    text = f"this node's clock is {abs(skew):.3f} s {'ahead of' if skew > 0 else 'behind'} the collector's"
    fix = "run chrony or ntpd on this node and the collector, synchronised to the same servers"
    if abs(skew) > CLOCK_FAIL_S:
        found.append(Finding("clock", Status.FAIL, text, fix))
    elif abs(skew) > CLOCK_WARN_S:
        found.append(Finding("clock", Status.WARN, text, fix))
    else:
        found.append(Finding("clock", Status.OK, text))
    return found


def _age(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


def check_spool(settings: AgentSettings) -> list[Finding]:
    """Room for the spool, and what waits in it (a backlog means the collector does not acknowledge)."""
    state, spool = settings.state_dir, settings.spool_dir
    found = [
        disk_finding(
            "spool-disk",
            spool,
            "the spool",
            settings.spool_max_bytes,
            f"free space there or move state_dir; spool_max_bytes is {human_bytes(settings.spool_max_bytes)}",
        )
    ]
    if not state.exists():
        found.append(
            Finding("spool", Status.INFO, f"{state} does not exist yet: made at the agent's first start")
        )
        return found
    if not os.access(state, os.W_OK | os.X_OK):
        found.append(
            Finding(
                "spool",
                Status.FAIL,
                f"{state} is not writable by this user",
                "run the agent (and doctor) as root",
            )
        )
        return found
    segments = sorted(spool.glob("seg-*.jps"))
    size = sum(s.stat().st_size for s in segments)
    problems: list[str] = []
    try:
        if segments or (spool / "state.json").exists():
            json.loads((spool / "state.json").read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"state.json unreadable ({exc}): the agent will set the segments aside in lost-*")
    rejected = len(list((spool / "rejected").glob("seq-*.json")))
    if rejected:
        problems.append(f"{rejected} batch(es) refused by the collector in {spool / 'rejected'}")
    lost = [p.name for p in spool.glob("lost-*")]
    if lost:
        problems.append(f"segments set aside after a damaged state: {', '.join(lost)}")
    waiting = len(list(settings.events_dir.glob("*.json")))
    if waiting:
        problems.append(
            f"{waiting} job event(s) from prolog/epilog waiting in {settings.events_dir} (agent down?)"
        )
    text = f"{len(segments)} segment(s), {human_bytes(size)} of {human_bytes(settings.spool_max_bytes)} in {spool}"
    if segments:
        text += f", oldest written {_age(time.time() - segments[0].stat().st_mtime)} ago"
    if size > 0.8 * settings.spool_max_bytes:
        problems.append("the spool is over 80 % full: the oldest measurements will be dropped soon")
    if problems:
        found.append(
            Finding(
                "spool",
                Status.WARN,
                text + "; " + "; ".join(problems),
                "check the collector line above, `journalctl -u jobpulse-agent`, and docs/delivery.md",
            )
        )
    else:
        found.append(Finding("spool", Status.OK, text))
    return found


def run_checks(
    settings: AgentSettings, slurm_conf: Path | None = None, timeout: float = 5.0
) -> list[Finding]:
    """Every check, in the order an admin fixes things: the node, Slurm, GPUs, the collector, the spool."""
    findings = check_cgroups(settings.cgroup_root)
    findings += check_slurm_conf(find_slurm_conf(slurm_conf))
    findings.append(check_nvml(settings))
    findings += check_collector(settings, timeout)
    findings += check_spool(settings)
    return findings
