#!/usr/bin/env bash
# Quick start, part 1: install everything, then run the default target of the DAG on the
# embedded default config (config/config.yaml). Extra arguments go to snakemake, e.g.
#   bash scripts/quickstart.sh corpus          # only the corpus stage
#   bash scripts/quickstart.sh --configfile config/tiny.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" WANDB_MODE="${WANDB_MODE:-offline}" WANDB_SILENT=true
exec snakemake --cores "${CORES:-2}" "$@"
