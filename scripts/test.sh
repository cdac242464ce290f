#!/usr/bin/env bash
# The test command: set up, lint with ruff, then run the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SUPERDAN_VENV:-.venv}"
export DAGSTER_DISABLE_TELEMETRY=1 OMP_WAIT_POLICY=passive
echo "[test] ruff"
"$VENV/bin/ruff" check superdan_assets superdan_assets_tests benchmarks
echo "[test] pytest"
exec "$VENV/bin/python" -m pytest "$@"
