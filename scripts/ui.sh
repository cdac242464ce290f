#!/usr/bin/env bash
# Open the Dagster UI on the same local instance the main job wrote to.
# Binds 127.0.0.1 (set SUPERDAN_UI_HOST=0.0.0.0 deliberately to expose it).
# Pointed at the cluster (eval "$(bash scripts/cluster.sh env)"), it serves the UI only:
# the cluster already has its one daemon, and `dagster dev` would start a second one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SUPERDAN_VENV:-.venv}"
export SUPERDAN_HOME="${SUPERDAN_HOME:-$PWD/.superdan}"
export DAGSTER_HOME="${DAGSTER_HOME:-$SUPERDAN_HOME/dagster_home}"
export DAGSTER_DISABLE_TELEMETRY=1 OMP_WAIT_POLICY=passive
# SQLite in DAGSTER_HOME with batched event writes, unless its dagster.yaml already has content.
"$VENV/bin/python" -m superdan_assets.instance.home "$DAGSTER_HOME" >/dev/null
if grep -q '^run_launcher:' "$DAGSTER_HOME/dagster.yaml" && [[ -n "${SUPERDAN_CODE_SERVER_PORT:-}" ]]; then
    exec "$VENV/bin/dagster-webserver" -w deploy/cluster/workspace.yaml \
        -h "${SUPERDAN_UI_HOST:-127.0.0.1}" -p "${SUPERDAN_UI_PORT:-3000}"
fi
exec "$VENV/bin/dagster" dev -w workspace.yaml -h "${SUPERDAN_UI_HOST:-127.0.0.1}" -p "${SUPERDAN_UI_PORT:-3000}"
