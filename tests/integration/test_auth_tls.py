"""Only agents with the cluster token (and, under mTLS, a client certificate) get data in."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from delivery import agent, stored
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from support import Collector, start_collector, stop, wait_for

TOKEN = "s3cret-cluster-token"


def make_certs(d: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, with openssl."""
    d.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "node1")):
        ssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return d


def try_stream(
    target: str, token: str | None, creds: grpc.ChannelCredentials | None = None
) -> grpc.StatusCode:
    """A hand-made agent: hello plus one batch; returns how the collector answered."""
    channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    with channel:
        stub = pb_grpc.IngestStub(channel)
        messages = [
            pb.AgentMessage(hello=pb.Hello(node="intruder", stream_id="x")),
            pb.AgentMessage(batch=pb.Batch(seq=1, node=[pb.NodeSample(time_ms=1, cpu_percent=99.0)])),
        ]
        metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
        try:
            for _ in stub.Stream(iter(messages), metadata=metadata, timeout=15):
                pass
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def intruder_rows(collector: Collector) -> int:
    with sqlite3.connect(collector.state / "jobpulse.db") as conn:
        nodes = conn.execute("SELECT count(*) FROM nodes WHERE name = 'intruder'").fetchone()[0]
        samples = conn.execute("SELECT count(*) FROM node_samples WHERE node = 'intruder'").fetchone()[0]
    return int(nodes + samples)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def token_collector(tmp_path: Path) -> Iterator[Collector]:
    c = start_collector(tmp_path / "collector", env={"JOBPULSE_TOKEN": TOKEN})
    yield c
    stop(c.proc)


def test_wrong_and_missing_token_refused(token_collector: Collector) -> None:
    assert try_stream(token_collector.grpc_target, "wrong") == grpc.StatusCode.UNAUTHENTICATED
    assert try_stream(token_collector.grpc_target, None) == grpc.StatusCode.UNAUTHENTICATED
    assert intruder_rows(token_collector) == 0, "a refused stream stored something"
    log = token_collector.log
    wait_for(lambda: "wrong token" in log.read_text() and "missing token" in log.read_text(), 10, "the log")
    assert try_stream(token_collector.grpc_target, TOKEN) == grpc.StatusCode.OK
    assert intruder_rows(token_collector) == 2  # the right token: node and its sample


def test_agent_with_wrong_token_stores_nothing(token_collector: Collector, tmp_path: Path) -> None:
    state = tmp_path / "agent"
    proc = agent(state, token_collector.grpc_target, "badtok", tick=0.2, JOBPULSE_TOKEN="nope")
    try:
        wait_for(lambda: "refused our token" in (state / "agent.log").read_text(), 20, "the refusal")
    finally:
        stop(proc)
    assert stored(token_collector, "badtok") == ([], [], 0)


def test_tls_with_token(certs: Path, tmp_path: Path) -> None:
    env = {"JOBPULSE_TOKEN": TOKEN, "JOBPULSE_TLS_CERT": str(certs / "server.crt"),
           "JOBPULSE_TLS_KEY": str(certs / "server.key")}  # fmt: skip
    collector = start_collector(tmp_path / "collector", env=env)
    try:
        # Plaintext against a TLS port does not get in.
        assert try_stream(collector.grpc_target, TOKEN) == grpc.StatusCode.UNAVAILABLE
        creds = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.crt").read_bytes())
        assert try_stream(collector.grpc_target, TOKEN, creds) == grpc.StatusCode.OK
        proc = agent(tmp_path / "agent", collector.grpc_target, "tls1", tick=0.2, JOBPULSE_TOKEN=TOKEN,
                     JOBPULSE_TLS_CA=str(certs / "ca.crt"))  # fmt: skip
        try:
            wait_for(lambda: len(stored(collector, "tls1")[0]) >= 3, 30, "samples over TLS")
        finally:
            stop(proc)
    finally:
        stop(collector.proc)


def test_mutual_tls_requires_a_client_certificate(certs: Path, tmp_path: Path) -> None:
    env = {"JOBPULSE_TOKEN": TOKEN, "JOBPULSE_TLS_CERT": str(certs / "server.crt"),
           "JOBPULSE_TLS_KEY": str(certs / "server.key"), "JOBPULSE_TLS_CA": str(certs / "ca.crt")}  # fmt: skip
    collector = start_collector(tmp_path / "collector", env=env)
    try:
        no_cert = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.crt").read_bytes())
        assert try_stream(collector.grpc_target, TOKEN, no_cert) == grpc.StatusCode.UNAVAILABLE
        assert intruder_rows(collector) == 0
        proc = agent(tmp_path / "agent", collector.grpc_target, "mtls1", tick=0.2, JOBPULSE_TOKEN=TOKEN,
                     JOBPULSE_TLS_CA=str(certs / "ca.crt"), JOBPULSE_TLS_CERT=str(certs / "client.crt"),
                     JOBPULSE_TLS_KEY=str(certs / "client.key"))  # fmt: skip
        try:
            wait_for(lambda: len(stored(collector, "mtls1")[0]) >= 3, 30, "samples over mutual TLS")
        finally:
            stop(proc)
    finally:
        stop(collector.proc)
