#!/usr/bin/env bash
# Run every benchmark, one after the other (they must not share the 2 cores), writing the tables
# to benchmarks/results/<name>.md and the JSON to benchmarks/results/<name>.json.
# The peers must be installed first: bash benchmarks/peers/setup_peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
for bench in client_overhead throughput cached semantic_cached startup coalesce memory optimize xdist redis peers; do
  echo "== $bench ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
  .venv/bin/python "benchmarks/bench_$bench.py" --json "$out/$bench.json" 2>"$out/$bench.log" \
    | tee "$out/$bench.md"
done
# The CPU breakdown needs py-spy, installed outside the project (see profile_cold_run.py).
if command -v py-spy >/dev/null || [ -x /tmp/tools/bin/py-spy ]; then
  .venv/bin/python benchmarks/profile_cold_run.py --json "$out/profile_cold_run.json" \
    2>"$out/profile_cold_run.log" | tee "$out/profile_cold_run.md"
fi
# Racing a step's candidates vs full evaluation (task calls counted at the simulated models).
.venv/bin/python benchmarks/bench_racing.py --json "$out/racing.json" 2>"$out/racing.log" \
  | tee "$out/racing.md"
