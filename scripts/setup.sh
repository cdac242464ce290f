#!/usr/bin/env bash
# Create (or reuse) the project virtualenv and install superdan with its pinned dependencies.
# Used by scripts/main.sh, scripts/test.sh and .ci/run so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${SUPERDAN_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
echo "[setup] installing superdan and its pinned dependencies (first time: ~3 minutes)"
"$VENV/bin/python" -m pip install --quiet -e ".[platform,dev,cluster]"
echo "[setup] ready: $VENV"
