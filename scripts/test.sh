#!/usr/bin/env bash
# The test command: set up, lint with ruff, then run the whole pytest suite.
#
# On a fresh machine it installs what the tests need: the project venv (scripts/setup.sh) and,
# for the production-path tests, PostgreSQL and Redis (scripts/cluster.sh install; root or
# passwordless sudo). Run as root, the suite also builds the Dockerfile with podman and runs
# the image (scripts/container-check.sh, through superdan_assets_tests/serving/test_container.py);
# SUPERDAN_CONTAINER_CHECK=0 skips that, =1 forces it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SUPERDAN_VENV:-.venv}"
export DAGSTER_DISABLE_TELEMETRY=1 OMP_WAIT_POLICY=passive
if [ -z "${SUPERDAN_CONTAINER_CHECK:-}" ] && [ "$(id -u)" = 0 ]; then
  export SUPERDAN_CONTAINER_CHECK=1
fi
marker=()
if ! bash scripts/cluster.sh install; then
  echo "[test] PostgreSQL/Redis could not be installed (needs root): skipping the cluster tests" >&2
  marker=(-m "not cluster")
fi
echo "[test] ruff"
"$VENV/bin/ruff" check superdan_assets superdan_assets_tests benchmarks
"$VENV/bin/ruff" format --check superdan_assets superdan_assets_tests benchmarks
echo "[test] pytest"
exec "$VENV/bin/python" -m pytest "${marker[@]}" "$@"
