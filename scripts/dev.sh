#!/usr/bin/env bash
# One entry point for a fresh machine that has only python3 and pip:
#   scripts/dev.sh demo [ARGS]   set up .venv (uv, locked dependencies) and run `jobpulse demo`
#   scripts/dev.sh test [ARGS]   set up, then ruff, mypy, import rules and the whole pytest suite
#   scripts/dev.sh test --fast   the everyday tier: ruff, mypy, import rules, unit tests
#   scripts/dev.sh run CMD ...   set up, then run CMD inside the environment
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9

# uv itself lives in its own small venv (.tools) so that PEP 668 systems and
# user-site quirks do not matter, and `uv sync` never removes it.
if [ ! -x .tools/bin/uv ] || ! .tools/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
  python3 -m venv .tools 2>/dev/null || { python3 -m pip install --quiet virtualenv && python3 -m virtualenv -q .tools; }
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
UV=.tools/bin/uv
"$UV" sync --frozen --quiet

cmd=${1:-demo}
shift || true
case "$cmd" in
  demo)
    exec "$UV" run --frozen jobpulse demo "$@" ;;
  test)
    if [ "${1:-}" = "--fast" ]; then
      # The everyday tier: lint, types, import rules, the unit tests and the contract tests (real clients'
      # requests replayed in process; no real daemons, Slurm or soaks).
      shift
      "$UV" run --frozen ruff check .
      "$UV" run --frozen mypy
      "$UV" run --frozen lint-imports
      # Spread over the cores (pytest-xdist): unit and contract tests share nothing but the CPU.
      exec "$UV" run --frozen pytest -q -n auto tests/unit tests/contract -m "not slow and not slurm" "$@"
    fi
    "$UV" run --frozen ruff check .
    "$UV" run --frozen ruff format --check .
    "$UV" run --frozen mypy
    "$UV" run --frozen lint-imports
    exec "$UV" run --frozen pytest "$@" ;;
  run)
    exec "$UV" run --frozen "$@" ;;
  *)
    echo "usage: scripts/dev.sh demo|test|run ..." >&2; exit 2 ;;
esac
