"""The committed wire code must be exactly what scripts/gen_proto.sh makes from proto/."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import ROOT


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)], check=True, capture_output=True
    )
    generated = sorted((tmp_path / "jobpulse" / "proto" / "v1").glob("*_pb2*"))
    committed_dir = ROOT / "common" / "src" / "jobpulse" / "proto" / "v1"
    assert generated, "gen_proto.sh produced nothing"
    assert sorted(p.name for p in generated) == sorted(p.name for p in committed_dir.glob("*_pb2*"))
    stale = [p.name for p in generated if p.read_text() != (committed_dir / p.name).read_text()]
    assert not stale, f"{stale} differ from proto/: run `uv run scripts/gen_proto.sh` and commit the result"
