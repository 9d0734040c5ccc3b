"""The .deb and .rpm packages, built by scripts/build-packages.sh and used as an admin would (issue 20).

The .rpm's contents are listed (`rpm -qlp`) and installed into a scratch root; the .deb is installed on
this machine, both daemons run from the installed files the way their systemd units start them (this
machine runs no systemd: the unit's ExecStart, User, UMask, Environment, StateDirectory and
RuntimeDirectory are applied here), the installed Slurm prolog/epilog and `doctor` are used, the
packages are upgraded to a newer build with the spool and the database kept and counted, a downgrade
over a newer database is refused, and both are removed and purged, leaving nothing behind.

Installs system-wide, so: root only, one run at a time on a machine (a lock), only /opt/jobpulse,
/etc/jobpulse, /var/lib/jobpulse*, /run/jobpulse*, the units and the jobpulse user are touched, and
everything but the user is purged at the end whatever happens. Set JOBPULSE_REQUIRE_PACKAGES=1 (CI) to
make a missing tool a failure instead of a skip.
"""

from __future__ import annotations

import configparser
import fcntl
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from jobpulse.agent.spool import HEADER
from support import ROOT, wait_for

pytestmark = [pytest.mark.packages, pytest.mark.slow, pytest.mark.timeout(1500)]

PARTS = ("agent", "collector")
UNIT_DIR = Path("/lib/systemd/system")
PLACES = [
    Path("/opt/jobpulse"),
    Path("/etc/jobpulse"),
    Path("/var/lib/jobpulse"),
    Path("/var/lib/jobpulse-collector"),
    *(UNIT_DIR / f"jobpulse-{p}.service" for p in PARTS),
    *(Path("/etc/systemd/system/multi-user.target.wants") / f"jobpulse-{p}.service" for p in PARTS),
]
DB = Path("/var/lib/jobpulse-collector/jobpulse.db")
SPOOL = Path("/var/lib/jobpulse/spool")
TOKEN = "package-test-token-0123456789"


def need(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("JOBPULSE_REQUIRE_PACKAGES") == "1":
        pytest.fail(f"JOBPULSE_REQUIRE_PACKAGES=1 but {why}")
    pytest.skip(why)


# tests/conftest.py points these at a file that never exists, so that no other test reads the host's
# /etc/jobpulse; the installed tools must read it here, as on an admin's host.
HOST_CONFIG_VARS = ("JOBPULSE_AGENT_CONFIG", "JOBPULSE_COLLECTOR_CONFIG")


def sh(*cmd: str | Path, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    if "env" not in kwargs:
        kwargs["env"] = {k: v for k, v in os.environ.items() if k not in HOST_CONFIG_VARS}
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done  # type: ignore[no-any-return]


def dpkg_installed(package: str) -> str | None:
    """The installed version, or None."""
    done = sh("dpkg-query", "-W", "-f=${Status} ${Version}", package, check=False)
    if done.returncode != 0 or not done.stdout.startswith("install ok installed"):
        return None
    return done.stdout.split()[-1]


@dataclass
class Built:
    """Release 1 (.deb and .rpm) and release 2 (.deb), the newer build the upgrade goes to."""

    out: Path
    seconds: float

    def deb(self, part: str, release: int) -> Path:
        return next(self.out.glob(f"jobpulse-{part}_*-{release}_*.deb"))

    def rpm(self, part: str) -> Path:
        return next(self.out.glob(f"jobpulse-{part}-*-1.*.rpm"))


@pytest.fixture(scope="module")
def machine_lock() -> Iterator[None]:
    """One package test per machine: they install into the same system paths."""
    need(os.geteuid() == 0, "installing packages needs root")
    lock = open("/run/lock/jobpulse-package-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        lock.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, machine_lock: None) -> Built:
    need(Path("/usr/bin/python3.11").exists(), "the packages run on /usr/bin/python3.11, not installed")
    for tool in ("dpkg-deb", "dpkg", "rpmbuild", "rpm", "rpm2cpio"):
        need(shutil.which(tool) is not None, f"{tool} not installed (apt-get install dpkg-dev rpm)")
    prebuilt = os.environ.get(
        "JOBPULSE_TEST_PACKAGES"
    )  # a directory built before: skip the build (development)
    if prebuilt:
        return Built(Path(prebuilt), 0.0)
    out = tmp_path_factory.mktemp("packages")
    started = time.monotonic()
    sh(ROOT / "scripts" / "build-packages.sh", "--out", out, "--release", "1", timeout=1200)
    sh(
        ROOT / "scripts" / "build-packages.sh",
        "--out",
        out,
        "--release",
        "2",
        "--formats",
        "deb",
        timeout=1200,
    )
    return Built(out, time.monotonic() - started)


# -- the .rpm: contents and a scratch-root install -------------------------------------------------


def test_rpm_contents_are_complete(built: Built, tmp_path: Path) -> None:
    files = {part: set(sh("rpm", "-qlp", built.rpm(part)).stdout.split()) for part in PARTS}
    agent, collector = files["agent"], files["collector"]
    site = "/opt/jobpulse/{}/lib/python3.11/site-packages"
    for path in (
        "/opt/jobpulse/bin/jobpulse-agent",
        "/opt/jobpulse/agent/bin/jobpulse-agent",
        "/opt/jobpulse/agent/bin/python",
        "/opt/jobpulse/agent/pyvenv.cfg",
        site.format("agent") + "/jobpulse/agent/cli.py",
        site.format("agent") + "/jobpulse/agent/doctor.py",
        site.format("agent") + "/jobpulse/common/config.py",
        site.format("agent") + "/jobpulse/proto/v1/ingest_pb2.py",
        site.format("agent") + "/grpc/__init__.py",
        site.format("agent") + "/psutil/__init__.py",
        site.format("agent") + "/pynvml.py",
        "/usr/lib/systemd/system/jobpulse-agent.service",
        "/etc/jobpulse/agent.toml",
        "/opt/jobpulse/slurm/prolog.d/50-jobpulse.sh",
        "/opt/jobpulse/slurm/epilog.d/50-jobpulse.sh",
        "/opt/jobpulse/slurm/slurm.conf.snippet",
    ):
        assert path in agent, path
    # Compute nodes get no web stack and no collector code.
    assert not [f for f in agent if re.search(r"/(litestar|uvicorn|jobpulse/collector)(/|$)", f)]
    for path in (
        "/opt/jobpulse/bin/jobpulse-collector",
        "/opt/jobpulse/bin/jobpulse",
        site.format("collector") + "/jobpulse/collector/app.py",
        site.format("collector") + "/litestar/__init__.py",
        site.format("collector") + "/uvicorn/__init__.py",
        "/usr/lib/systemd/system/jobpulse-collector.service",
        "/opt/jobpulse/slurm/mailprog.sh",
        "/etc/jobpulse/collector.toml",
        "/var/lib/jobpulse-collector",
    ):
        assert path in collector, path
    assert not [f for f in collector if "/jobpulse/agent/" in f]
    # Every file of the workspace sources (modules, generated wire code, package data) is in the package
    # that needs it.
    for part in ("agent", "collector", "common"):
        owners = ["agent", "collector"] if part == "common" else [part]
        for source in (ROOT / part / "src").rglob("*"):
            if source.is_file() and "__pycache__" not in source.parts:
                rel = source.relative_to(ROOT / part / "src")
                for owner in owners:
                    assert f"{site.format(owner)}/{rel}" in files[owner], (owner, rel)
    # Settings are configuration files rpm keeps on upgrade (%config(noreplace)), with their modes.
    assert sh("rpm", "-qpc", built.rpm("agent")).stdout.split() == ["/etc/jobpulse/agent.toml"]
    dump = sh("rpm", "-qp", "--dump", built.rpm("collector")).stdout
    assert re.search(r"^/etc/jobpulse/collector.toml \S+ \S+ \S+ 0100640 root jobpulse 1", dump, re.M), dump
    assert re.search(r"^/var/lib/jobpulse-collector \S+ \S+ \S+ 040700 jobpulse jobpulse", dump, re.M)
    assert "python3.11" in sh("rpm", "-qpR", built.rpm("agent")).stdout.split()
    scripts = sh("rpm", "-qp", "--scripts", built.rpm("collector")).stdout
    assert "useradd --system" in scripts and "jobpulse_check_schema" in scripts

    # Installed into a scratch root: every file lands, and the relocatable venvs run from there.
    scratch = tmp_path / "root"
    sh("rpm", "--root", scratch, "--initdb")
    sh("rpm", "--root", scratch, "-i", "--nodeps", "--noscripts", built.rpm("agent"), built.rpm("collector"))
    assert sh("rpm", "--root", scratch, "-q", "jobpulse-agent", "jobpulse-collector").returncode == 0
    for part in PARTS:
        for path in files[part]:
            assert os.path.lexists(scratch / path.lstrip("/")), path
    helped = sh(scratch / "opt/jobpulse/agent/bin/jobpulse-agent", "--help")
    assert "doctor" in helped.stdout
    sh(scratch / "opt/jobpulse/collector/bin/jobpulse-collector", "--help")
    verified = sh(
        "rpm", "--root", scratch, "-V", "--nodeps", "jobpulse-agent", "jobpulse-collector", check=False
    )
    assert verified.stdout.strip() == "", verified.stdout  # nothing differs from the package's records


# -- the .deb on this machine ----------------------------------------------------------------------


def unit(part: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT_DIR / f"jobpulse-{part}.service")
    return parser["Service"]


def start_as_unit(part: str, log: Path) -> subprocess.Popen[bytes]:
    """Start the installed daemon the way systemd would from its installed unit file."""
    service = unit(part)
    user = service.get("User", "root")
    group = service.get("Group", grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name)
    owner = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    for kind, base in (("StateDirectory", "/var/lib"), ("RuntimeDirectory", "/run")):
        path = Path(base) / service[kind]
        path.mkdir(exist_ok=True)
        os.chown(path, *owner)
        path.chmod(int(service[f"{kind}Mode"], 8))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for line in service.get("Environment", "").splitlines():
        for assignment in shlex.split(line):
            key, _, value = assignment.partition("=")
            env[key] = value
    argv = shlex.split(service["ExecStart"])
    assert argv[0].startswith("/opt/jobpulse/bin/"), argv
    return subprocess.Popen(
        argv,
        user=user,
        group=group,
        extra_groups=[],
        umask=int(service["UMask"], 8),
        env=env,
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_unit(proc: subprocess.Popen[bytes], part: str) -> None:
    """systemctl stop: SIGTERM, wait; the RuntimeDirectory goes away with the service."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    shutil.rmtree(Path("/run") / unit(part)["RuntimeDirectory"], ignore_errors=True)


def answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    """The collector's HTTP side answers (or it died: the caller then shows its log)."""
    if proc.poll() is not None:
        return True
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counts() -> dict[str, int]:
    db = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    try:
        return {
            "schema": int(db.execute("PRAGMA user_version").fetchone()[0]),
            "jobs": int(db.execute("SELECT count(*) FROM jobs").fetchone()[0]),
            "node_samples": int(
                db.execute("SELECT count(*) FROM node_samples WHERE node = 'pkgnode'").fetchone()[0]
            ),
        }
    finally:
        db.close()


def spool_records() -> tuple[int, int]:
    """(batches the agent's spool holds unacknowledged as far as its state.json says, the highest seq)."""
    floor = int(json.loads((SPOOL / "state.json").read_text()).get("floor", 0))
    total = top = 0
    for segment in SPOOL.glob("seg-*.jps"):
        data, pos = segment.read_bytes(), 0
        while pos + HEADER.size <= len(data):
            _magic, length, _crc, seq, _time_ms = HEADER.unpack_from(data, pos)
            pos += HEADER.size + length
            total += seq > floor
            top = max(top, seq)
    return total, top


def acked_seq() -> int:
    """The highest sequence the collector committed for the test node's agent."""
    db = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT max(last_seq) FROM agent_streams WHERE node = 'pkgnode'").fetchone()
        return int(row[0] or 0)
    finally:
        db.close()


def run_hook(kind: str, job: int, slurm_dir: Path) -> None:
    """The installed Slurm hook as slurmd runs it, as root with the job in its environment."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "SLURM_CONF": str(slurm_dir / "slurm.conf"),
        "SLURM_JOB_ID": str(job),
        "SLURM_JOB_USER": "root",
        "SLURM_JOB_UID": "0",
        "SLURM_JOB_NODELIST": "pkgnode",
        "SLURM_CLUSTER_NAME": "pkgtest",
    }
    done = sh(Path("/opt/jobpulse/slurm") / f"{kind}.d" / "50-jobpulse.sh", env=env)
    assert done.stdout == "" and done.stderr == ""


def purge() -> None:
    for part in PARTS:
        if (
            dpkg_installed(f"jobpulse-{part}")
            or "jobpulse" in sh("dpkg", "-l", f"jobpulse-{part}", check=False).stdout
        ):
            sh("dpkg", "--purge", f"jobpulse-{part}", check=False)
    for leftover in ("/run/jobpulse", "/run/jobpulse-collector"):
        shutil.rmtree(leftover, ignore_errors=True)


def test_deb_install_run_upgrade_remove_purge(built: Built, tmp_path: Path) -> None:
    for part in PARTS:
        assert dpkg_installed(f"jobpulse-{part}") is None, (
            f"jobpulse-{part} is already installed on this machine: not touching it (dpkg --purge it first)"
        )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {part: tmp_path / f"{part}.log" for part in PARTS}
    try:
        # Install release 1: the user, the state directory, configs and units as an admin gets them.
        installed = sh("dpkg", "-i", built.deb("agent", 1), built.deb("collector", 1))
        assert "jobpulse-agent doctor" in installed.stdout
        assert dpkg_installed("jobpulse-agent") == dpkg_installed("jobpulse-collector") == "0.1.0-1"
        assert pwd.getpwnam("jobpulse").pw_shell.endswith("nologin")
        state = Path("/var/lib/jobpulse-collector").stat()
        assert (pwd.getpwuid(state.st_uid).pw_name, stat.S_IMODE(state.st_mode)) == ("jobpulse", 0o700)
        agent_conf, collector_conf = Path("/etc/jobpulse/agent.toml"), Path("/etc/jobpulse/collector.toml")
        assert stat.S_IMODE(agent_conf.stat().st_mode) == 0o600
        assert stat.S_IMODE(collector_conf.stat().st_mode) == 0o640
        assert grp.getgrgid(collector_conf.stat().st_gid).gr_name == "jobpulse"
        assert sh("dpkg-query", "-W", "-f=${Conffiles}", "jobpulse-agent").stdout.split()[0] == str(
            agent_conf
        )
        for part in PARTS:  # enabled by the package
            assert Path(f"/etc/systemd/system/multi-user.target.wants/jobpulse-{part}.service").is_symlink()
        if shutil.which("systemd-analyze"):
            for part in PARTS:
                done = sh(
                    "systemd-analyze",
                    "verify",
                    "--man=no",
                    UNIT_DIR / f"jobpulse-{part}.service",
                    check=False,
                )
                assert done.returncode == 0 and "Unknown" not in done.stderr, done.stderr

        # An admin's settings (kept across the upgrade: configuration files).
        http_port, grpc_port = free_port(), free_port()
        cgroups = tmp_path / "cgroup"  # this machine's real jobs (others' Slurm) are not this test's
        cgroups.mkdir()
        collector_conf.write_text(
            collector_conf.read_text()
            + f'\nhttp_port = {http_port}\ngrpc_listen = "127.0.0.1:{grpc_port}"\ntoken = "{TOKEN}"\n'
            'admin_password = "package-test-admin"\nreconcile = "off"\n'
        )
        agent_conf.write_text(
            agent_conf.read_text()
            + f'\ncollector = "127.0.0.1:{grpc_port}"\ntoken = "{TOKEN}"\nnode = "pkgnode"\n'
            f'cluster = "pkgtest"\ntick = 0.5\ngpus = false\ncgroup_root = "{cgroups}"\n'
        )
        slurm_dir = tmp_path / "slurm"
        slurm_dir.mkdir()
        (slurm_dir / "slurm.conf").write_text(
            "Prolog=/opt/jobpulse/slurm/prolog.d/*\nEpilog=/opt/jobpulse/slurm/epilog.d/*\n"
        )

        # A database an older release left behind (schema LATEST - 2) with one job in it.
        latest = int(
            sh(
                "/opt/jobpulse/collector/bin/python",
                "-c",
                "from jobpulse.collector.store.migrations import LATEST; print(LATEST)",
            ).stdout
        )
        sh(
            "runuser",
            "-u",
            "jobpulse",
            "--",
            "/opt/jobpulse/collector/bin/python",
            "-c",
            "import sqlite3, time; from jobpulse.collector.store.migrations import migrate; "
            f"db = sqlite3.connect('{DB}'); db.execute('PRAGMA journal_mode=WAL'); migrate(db, target={latest - 2}); "
            "db.execute(\"INSERT INTO jobs (job_id, cluster, start_time, updated) VALUES (7, 'pkgtest', 1700000000, ?)\", (time.time(),)); "
            "db.commit()",
        )
        assert counts()["schema"] == latest - 2
        doctor = sh("/opt/jobpulse/bin/jobpulse-collector", "doctor", check=False)
        assert f"migrates it to {latest}" in doctor.stdout, doctor.stdout

        # Both daemons from the installed files, as their units start them.
        procs["collector"] = start_as_unit("collector", logs["collector"])
        wait_for(lambda: answers(http_port, procs["collector"]), 60, "the installed collector to answer")
        assert procs["collector"].poll() is None, logs["collector"].read_text()
        procs["agent"] = start_as_unit("agent", logs["agent"])
        assert counts()["schema"] == latest and counts()["jobs"] == 1  # migrated, the old job kept

        # A Slurm job through the installed prolog/epilog (they find the installed agent by themselves).
        run_hook("prolog", 4242, slurm_dir)
        wait_for(
            lambda: counts()["jobs"] == 2 and counts()["node_samples"] >= 4, 60, "the job and samples stored"
        )
        run_hook("epilog", 4242, slurm_dir)
        # doctor from the installed files agrees: collector, token, clock, Slurm hooks.
        checked = sh(
            "/opt/jobpulse/bin/jobpulse-agent",
            "doctor",
            "--json",
            "--slurm-conf",
            slurm_dir / "slurm.conf",
            check=False,
        )
        found = {f["check"]: f for f in json.loads(checked.stdout)}
        for check in ("collector", "clock", "prolog", "epilog"):
            assert found[check]["status"] == "ok", found[check]
        api = httpx.post(
            f"http://127.0.0.1:{http_port}/api/login",
            json={"Username": "admin", "Password": "package-test-admin"},
            timeout=10,
        )
        jobs = httpx.get(
            f"http://127.0.0.1:{http_port}/api/jobs",
            headers={"Authorization": f"Bearer {api.json()['token']}"},
            timeout=10,
        )
        assert {j["Id"] for j in jobs.json()["Jobs"]} >= {4242, 7}

        # The collector goes away first: the agent spools what it cannot deliver; then the agent stops.
        stop_unit(procs.pop("collector"), "collector")
        time.sleep(3)
        stop_unit(procs.pop("agent"), "agent")
        before, (spooled, last_spooled) = counts(), spool_records()
        assert spooled >= 3 and acked_seq() < last_spooled, (spooled, last_spooled, acked_seq())
        spool_bytes = {p.name: p.read_bytes() for p in SPOOL.glob("seg-*.jps")}

        # Upgrade to release 2: spool, database and settings kept; the daemons deliver the backlog.
        sh("dpkg", "-i", "--force-confold", built.deb("agent", 2), built.deb("collector", 2))
        assert dpkg_installed("jobpulse-agent") == dpkg_installed("jobpulse-collector") == "0.1.0-2"
        assert {p.name: p.read_bytes() for p in SPOOL.glob("seg-*.jps")} == spool_bytes
        assert counts() == before
        assert TOKEN in agent_conf.read_text() and TOKEN in collector_conf.read_text()
        procs["collector"] = start_as_unit("collector", logs["collector"])
        wait_for(lambda: answers(http_port, procs["collector"]), 60, "the upgraded collector to answer")
        assert procs["collector"].poll() is None, logs["collector"].read_text()
        procs["agent"] = start_as_unit("agent", logs["agent"])
        wait_for(
            lambda: counts()["node_samples"] >= before["node_samples"] + spooled, 60, "the spool replayed"
        )
        wait_for(lambda: acked_seq() >= last_spooled, 60, "every spooled batch committed")
        after = counts()
        print(
            f"\npackage test: built in {built.seconds:.0f} s; before upgrade {before}, spooled {spooled} "
            f"batches, after {after}"
        )
        assert after["jobs"] == before["jobs"]
        for part in PARTS:
            stop_unit(procs.pop(part), part)
        assert "Traceback" not in logs["agent"].read_text() + logs["collector"].read_text()

        # A downgrade (release 2 -> 1) over a database a newer collector wrote is refused, nothing changed.
        db = sqlite3.connect(DB)
        db.execute(f"PRAGMA user_version = {latest + 1}")
        db.close()
        kept = DB.read_bytes()
        refused = sh("dpkg", "-i", built.deb("collector", 1), check=False)
        assert refused.returncode != 0
        assert (
            f"has schema version {latest + 1}" in refused.stderr and "refusing to install" in refused.stderr
        )
        assert dpkg_installed("jobpulse-collector") == "0.1.0-2" and DB.read_bytes() == kept
        # The .rpm's %pre holds the same check: run as rpm would for an upgrade ($1 = 2), it refuses too.
        scripts = sh("rpm", "-qp", "--scripts", built.rpm("collector")).stdout
        pre = scripts.split("preinstall scriptlet (using /bin/sh):\n", 1)[1].split(
            "\npostinstall scriptlet", 1
        )[0]
        refused = sh("sh", "-c", pre, "jobpulse-collector.rpm", "2", check=False)
        assert refused.returncode == 1 and f"has schema version {latest + 1}" in refused.stderr, refused
        assert DB.read_bytes() == kept
        assert Path("/opt/jobpulse/bin/jobpulse-collector").exists()

        # Remove: programs go, settings and data stay. Purge: everything goes.
        sh("dpkg", "--remove", "jobpulse-agent", "jobpulse-collector")
        assert not Path("/opt/jobpulse").exists()
        assert agent_conf.exists() and collector_conf.exists() and DB.exists() and SPOOL.exists()
        sh("dpkg", "--purge", "jobpulse-agent", "jobpulse-collector")
        assert [str(p) for p in PLACES if os.path.lexists(p)] == []
        assert "jobpulse" not in sh("dpkg", "-l", check=False).stdout
    finally:
        for part, proc in procs.items():
            stop_unit(proc, part)
        purge()
