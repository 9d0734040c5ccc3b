"""`jobpulse`: the user-facing command (demo, and later report)."""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from jobpulse.collector.demo import run_demo

        if args.duration is None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return run_demo(args.duration, args.http_port, args.grpc_port, keep=args.keep)
    return 2


if __name__ == "__main__":
    sys.exit(main())
