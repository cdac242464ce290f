#!/usr/bin/env bash
# The main job: set up, then materialize the pipeline on the embedded defaults
# (local files, SQLite Dagster instance in .superdan/dagster_home, W&B offline).
#   live Chicago API:  bash scripts/main.sh
#   offline export:    SUPERDAN_EXPORT_PATH=../shared/data/chicago bash scripts/main.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SUPERDAN_VENV:-.venv}"
exec "$VENV/bin/superdan" pipeline "$@"
