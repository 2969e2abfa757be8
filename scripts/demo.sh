#!/usr/bin/env bash
# The main job, offline: score the example project's prompt suites on the built-in simulated
# models, optimize them with GPO, write the improved prompts back, and write the diff report.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
cd example_project
echo "== 1. score the prompts (the CI gate) =="
../.venv/bin/python -m pytest -q || true
echo
echo "== 2. optimize them with GPO and write the improved prompts back =="
../.venv/bin/python -m pytest -q --gpo-optimize=write
status=$?
echo
echo "== 3. re-run the gate on the rewritten prompts =="
../.venv/bin/python -m pytest -q
echo
echo "Report: example_project/.gpo/report.md (JSON beside it). See the change: git diff example_project/prompts"
echo "Undo it: git checkout -- example_project/prompts"
# exit 1 from step 2 means 'prompts were rewritten' (like --force-regen); that is the demo's goal
[ "$status" -le 1 ] || exit "$status"
