#!/usr/bin/env bash
# Quick start, part 2: install everything, then lint and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" WANDB_MODE=disabled WANDB_SILENT=true
ruff check src tests
exec python -m pytest -n 2 --dist worksteal --durations=10 "$@"
