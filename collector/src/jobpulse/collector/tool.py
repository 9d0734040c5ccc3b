"""`jobpulse`: the user-facing command: the demo, a job's report, and the report by mail (Slurm's MailProg)."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobpulse", description="per-job resource monitoring for Slurm")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="collector + agent + a real sample job, on loopback")
    demo.add_argument("--duration", type=float, help="exit after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--http-port", type=int, default=8100)
    demo.add_argument("--grpc-port", type=int, default=50051)
    demo.add_argument("--keep", action="store_true", help="keep the temporary state directory")
    report = sub.add_parser(
        "report",
        help="a job's report: what it was given and how it used it, with notes on what to change",
        description="Reads the job from the collector's API (URL and credential from --url, JOBPULSE_URL, "
        "JOBPULSE_API_KEY / JOBPULSE_TOKEN, ~/.config/jobpulse/client.toml or /etc/jobpulse/client.toml).",
    )
    report.add_argument("job", help="job id: 123, an array task 123_4, a het component 123+1")
    report.add_argument("--url", help="the collector's HTTP address (default http://127.0.0.1:8100)")
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument("--no-color", action="store_true", help="no terminal colours (also when not a tty)")
    report.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for a just-ended job's summary (default 0)"
    )
    mail = sub.add_parser(
        "mail",
        help="Slurm MailProg: the end-of-job mail with the job's report, sent by the real mail program",
    )
    mail.add_argument("-s", dest="subject", required=True, help="the subject slurmctld gives")
    mail.add_argument("--mailer", help="the real mail program (default $JOBPULSE_MAILER or /usr/bin/mail)")
    mail.add_argument("--url", help="the collector's HTTP address")
    mail.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for the summary (default 120)"
    )
    args, rest = parser.parse_known_args(argv)
    if args.command != "mail" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "report":
        return _report(args)
    if args.command == "mail":
        from jobpulse.collector.report.client import ReportError, load_settings
        from jobpulse.collector.report.mail import run_mail

        try:
            settings = load_settings(args.url)
        except ReportError as exc:
            print(f"jobpulse mail: {exc} (sending the mail without a report)", file=sys.stderr)
            from jobpulse.collector.report.client import DEFAULT_URL, ClientSettings

            settings = ClientSettings(DEFAULT_URL)
        return run_mail(args.subject, rest, settings, args.mailer, args.wait)
    if args.command == "demo":
        from jobpulse.collector.demo import run_demo

        if args.duration is None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return run_demo(args.duration, args.http_port, args.grpc_port, keep=args.keep)
    return 2


def _report(args: argparse.Namespace) -> int:
    """`jobpulse report`: print the report, or one line saying why there is none (exit code 1-3)."""
    import json

    from jobpulse.collector.domain.jobid import JobId
    from jobpulse.collector.report.client import ReportError, fetch_job, load_settings
    from jobpulse.collector.report.render import build_report, render_text

    try:
        JobId.parse(args.job, "job")
    except ValueError as exc:
        print(f"jobpulse report: {exc}", file=sys.stderr)
        return 2
    try:
        report = build_report(fetch_job(load_settings(args.url), args.job, args.wait))
    except ReportError as exc:
        print(f"jobpulse report: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    colour = not args.no_color and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    sys.stdout.write(render_text(report, colour=colour))
    return 0


if __name__ == "__main__":
    sys.exit(main())
