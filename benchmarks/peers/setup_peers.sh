#!/usr/bin/env bash
# Install the peers into /tmp, never into the project's environment:
#   DSPy      -> /tmp/peer-dspy      (python3 -m venv + pip install dspy)
#   promptfoo -> /tmp/peer-promptfoo (npm install promptfoo)
# Re-running is cheap: what is installed already is kept. Needs the package registries only.
set -euo pipefail
PY=${PYTHON:-python3}
if [ ! -x /tmp/peer-dspy/bin/python ] || ! /tmp/peer-dspy/bin/python -c "import dspy" 2>/dev/null; then
  "$PY" -m venv /tmp/peer-dspy
  /tmp/peer-dspy/bin/pip install -q dspy
fi
if [ ! -x /tmp/peer-promptfoo/node_modules/.bin/promptfoo ]; then
  mkdir -p /tmp/peer-promptfoo
  (cd /tmp/peer-promptfoo && { [ -f package.json ] || npm init -y >/dev/null; } && npm install -q promptfoo)
fi
echo "dspy $(/tmp/peer-dspy/bin/python -c 'import dspy; print(dspy.__version__)')"
echo "promptfoo $(node -e 'console.log(require("/tmp/peer-promptfoo/node_modules/promptfoo/package.json").version)')"
