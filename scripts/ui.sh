#!/usr/bin/env bash
# Open the Dagster UI on the same local instance the main job wrote to.
# Binds 127.0.0.1 (set SUPERDAN_UI_HOST=0.0.0.0 deliberately to expose it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SUPERDAN_VENV:-.venv}"
export SUPERDAN_HOME="${SUPERDAN_HOME:-$PWD/.superdan}"
export DAGSTER_HOME="${DAGSTER_HOME:-$SUPERDAN_HOME/dagster_home}"
export DAGSTER_DISABLE_TELEMETRY=1 OMP_WAIT_POLICY=passive
mkdir -p "$DAGSTER_HOME" && touch "$DAGSTER_HOME/dagster.yaml"
exec "$VENV/bin/dagster" dev -w workspace.yaml -h "${SUPERDAN_UI_HOST:-127.0.0.1}" -p "${SUPERDAN_UI_PORT:-3000}"
