#!/usr/bin/env bash
# Create .venv and install pytest-gpo with everything its tests and demo need, offline-safe.
# torch is installed first, pinned to the local CPU build, so that sentence-transformers does
# not pull a multi-GB CUDA build. Re-running is cheap: a stamp records what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.gpo-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[semantic,test,lint,type]"
  echo "$want" > "$stamp"
fi
# redis-server for the shared-cache tests (system package; skipped quietly when unavailable)
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) \
    >/dev/null 2>&1 || echo "note: redis-server could not be installed; redis tests will skip"
fi
