"""Which gRPC listen addresses count as loopback, and when the collector refuses to start (issue 14 D13;
the real start is tested in tests/integration/test_ingest_open_port.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobpulse.collector.ingest import _loopback, check_ingest_auth
from jobpulse.collector.settings import CollectorSettings
from jobpulse.common.config import ConfigError


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.0.0.2:0", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("unix:/run/jobpulse/ingest.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.1:50051", False),
        ("head01:50051", False),
    ],
)
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert _loopback(listen) is loopback
    settings = CollectorSettings(grpc_listen=listen)
    if loopback:
        check_ingest_auth(settings)
    else:
        with pytest.raises(ConfigError, match="allow_unauthenticated_ingest"):
            check_ingest_auth(settings)
        check_ingest_auth(CollectorSettings(grpc_listen=listen, token="t"))
        check_ingest_auth(CollectorSettings(grpc_listen=listen, tls_ca=Path("/etc/jobpulse/ca.crt")))
        check_ingest_auth(CollectorSettings(grpc_listen=listen, allow_unauthenticated_ingest=True))
