#!/usr/bin/env bash
# The main job, offline: score the example project's prompt suites on the built-in simulated
# models, optimize them with GPO, write the improved prompts back, and write the diff report.
# It changes only example_project/prompts/*.txt (the rewritten prompts, as announced below);
# its reports, checkpoints and response cache go to git-ignored files under example_project/.gpo/.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
# The demo's answers are cached apart from the committed cache (.gpo/cache), which the example
# project keeps for replay in its own CI and which the demo must leave as it is.
export GPO_CACHE_DIR=.gpo/demo-cache
cd example_project
echo "== 1. score the prompts (the CI gate) =="
../.venv/bin/python -m pytest -q -p no:cacheprovider
first=$?
echo
echo "== 2. optimize them with GPO and write the improved prompts back =="
../.venv/bin/python -m pytest -q -p no:cacheprovider --gpo-optimize=write \
  --gpo-report .gpo/report.md
status=$?
echo
echo "== 3. re-run the gate on the rewritten prompts =="
../.venv/bin/python -m pytest -q -p no:cacheprovider
gate=$?
echo
echo "Report: example_project/.gpo/report.md (JSON beside it)."
echo "Prompt files this demo may rewrite: example_project/prompts/*.txt"
echo "See the change: git diff example_project/prompts    Undo it: git checkout -- example_project/prompts"
# Step 2 exits 1 when it rewrote prompts (like --force-regen): that is the demo's goal.
[ "$status" -le 1 ] || exit "$status"
[ "$first" -eq 0 ] || exit "$first"
exit "$gate"
