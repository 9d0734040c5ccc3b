#!/usr/bin/env bash
# Regenerate the committed wire code from proto/. Run: uv run scripts/gen_proto.sh [OUTDIR]
# With OUTDIR (used by the drift test) the code is written there instead of common/src.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/common/src}
mkdir -p "$out/jobpulse/proto/v1"
rm -f "$out"/jobpulse/proto/v1/*_pb2*.py "$out"/jobpulse/proto/v1/*_pb2*.pyi
python -m grpc_tools.protoc \
  --proto_path=jobpulse/proto/v1="$root/proto/jobpulse/v1" \
  --python_out="$out" \
  --mypy_out="$out" \
  --grpc_python_out="$out" \
  --mypy_grpc_out="$out" \
  $(cd "$root/proto/jobpulse/v1" && ls *.proto | sed 's|^|jobpulse/proto/v1/|')
