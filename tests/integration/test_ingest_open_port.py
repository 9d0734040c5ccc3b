"""Issue 14 D13: the gRPC ingest port took data without a token by default, on any address.

Off loopback the collector now needs a credential (``token``, or ``tls_ca`` for mutual TLS) or the
explicit opt-out ``allow_unauthenticated_ingest = true``, which it warns about at every start.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from support import start_collector, stop, wait_for


def _serve(state: Path, listen: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
    return subprocess.run(
        [sys.executable, "-m", "jobpulse.collector.cli", "serve", "--state-dir", str(state),
         "--http-port", "0", "--grpc-listen", listen],
        env={**clean, "JOBPULSE_ADMIN_PASSWORD": "not-used-here", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_d13_no_unauthenticated_ingest_off_loopback(tmp_path: Path) -> None:
    done = _serve(tmp_path / "open", "0.0.0.0:0")
    assert done.returncode == 2, done.stderr[-2000:]
    for name in ("grpc_listen", "'0.0.0.0:0'", "token", "tls_ca", "allow_unauthenticated_ingest"):
        assert name in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "open" / "jobpulse.db").exists(), "it opened the database before refusing"


async def _anonymous_stream(target: str) -> list[pb.CollectorMessage]:
    async with grpc.aio.insecure_channel(target) as channel:
        hello = pb.AgentMessage(hello=pb.Hello(node="anon", stream_id="s"))
        return [m async for m in pb_grpc.IngestStub(channel).Stream(iter([hello]))]


def test_d13_off_loopback_with_a_token_or_the_loud_opt_out(tmp_path: Path) -> None:
    with_token = start_collector(
        tmp_path / "token", "--grpc-listen", "0.0.0.0:0", env={"JOBPULSE_TOKEN": "s3cret"}
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            asyncio.run(_anonymous_stream(with_token.grpc_target))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stop(with_token.proc)
    opted_out = start_collector(
        tmp_path / "optout",
        "--grpc-listen",
        "0.0.0.0:0",
        env={"JOBPULSE_ALLOW_UNAUTHENTICATED_INGEST": "true"},
    )
    try:
        assert [m.ack.seq for m in asyncio.run(_anonymous_stream(opted_out.grpc_target))] == [0]
        wait_for(lambda: "UNAUTHENTICATED INGEST" in opted_out.log.read_text(), 10, "the warning")
    finally:
        stop(opted_out.proc)
