"""`jobpulse mail`: Slurm's MailProg with the job report in the end-of-job email.

slurmctld runs ``MailProg -s "<subject>" <recipient>`` (Slurm 22.05: subject like
``Slurm Job_id=7003 Name=train Ended, Run time 00:02:31, COMPLETED, ExitCode 0``). Set
``MailProg=/opt/jobpulse/bin/jobpulse-mail`` (or a wrapper calling ``jobpulse mail``): the job id is read
from the subject, the report is appended to the body for every mail but "Began"/"Queued", and the real
mail program (``--mailer``, ``JOBPULSE_MAILER``, default ``/usr/bin/mail``) gets the same arguments.

The mail is never lost because of jobpulse: when the collector cannot be reached or the job is unknown,
the mail goes out with one line saying why there is no report. The summary is computed about a minute after
a job ends, so the report waits for it up to ``--wait`` seconds (slurmctld runs MailProg in its own
process, so the wait holds up nothing but this mail).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from jobpulse.collector.report.client import ClientSettings, ReportError, fetch_job
from jobpulse.collector.report.render import build_report, render_text

JOB_ID = re.compile(r"\bJob_id=(\d+(?:_\d+|\+\d+)?)\b")
NO_REPORT = ("Began", "Queued")
DEFAULT_MAILER = "/usr/bin/mail"


def job_of(subject: str) -> str | None:
    """The job id a Slurm mail subject is about; None for array summaries (``8_*``) and other mail."""
    found = JOB_ID.search(subject)
    return found.group(1) if found else None


def run_mail(
    subject: str, passthrough: list[str], settings: ClientSettings, mailer: str | None, wait_s: float
) -> int:
    """Send the mail through the real mail program, with the report added where it belongs."""
    body = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    job = job_of(subject)
    if job is not None and not any(word in subject for word in NO_REPORT):
        try:
            report = render_text(build_report(fetch_job(settings, job, wait_s)), colour=False)
            body += ("\n" if body and not body.endswith("\n") else "") + report
        except ReportError as exc:
            body += f"\n(no jobpulse report: {exc})\n"
    program = mailer or os.environ.get("JOBPULSE_MAILER") or DEFAULT_MAILER
    try:
        done = subprocess.run([program, "-s", subject, *passthrough], input=body, text=True, check=False)
    except OSError as exc:
        print(f"jobpulse mail: cannot run the mail program {program}: {exc}", file=sys.stderr)
        return 1
    return done.returncode
