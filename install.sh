#!/usr/bin/env bash
# Installs what facexai needs into the current Python environment (idempotent).
# torch first: an existing torch build (e.g. a CUDA one) is kept; otherwise torch 2.13.0 is installed
# before anything that depends on it, so pip does not pull a multi-GB CUDA build as a dependency.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
"$PY" -m pip install --quiet -e ".[test${FACEXAI_EXTRAS:+,$FACEXAI_EXTRAS}]"
