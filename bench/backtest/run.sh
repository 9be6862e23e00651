#!/usr/bin/env bash
# Backtest speed: 200 simulated timelines of 15 one-minute looks at 50 requests/s, replayed by
# `canary-gate backtest` (sequential and fixed-horizon configs) and by a scipy
# re-implementation of the fixed-horizon judge, in the same run. Prints time per look and the
# ratios. Usage: bash bench/backtest/run.sh [TIMELINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
cargo build -q --release -p canary-gate-cli
bin=target/release/canary-gate
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
scenarios=(healthy regression latency errors late noisy)
for i in $(seq 1 "$n"); do
    s=${scenarios[$((i % ${#scenarios[@]}))]}
    "$bin" simulate --config examples/demo-config.json --scenario "$s" --looks 15 --seed "$i" > "$dir/t$i.jsonl"
done
sed 's/"threshold_percent_increase": 20,/&/' examples/demo-config.json \
  | python3 -c 'import json,sys; c=json.load(sys.stdin); c["analysis"]={"method":"fixed-horizon"}; print(json.dumps(c))' > "$dir/fixed.json"
args=()
for i in $(seq 1 "$n"); do args+=(--timeline "$dir/t$i.jsonl"); done
time_it() { local t0 t1; t0=$(date +%s.%N); "$@" > "$dir/out.jsonl"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
seq_s=$(time_it "$bin" backtest --config examples/demo-config.json "${args[@]}")
looks=$(grep -c '"action"' "$dir/out.jsonl")
fix_s=$(time_it "$bin" backtest --config "$dir/fixed.json" "${args[@]}")
fix_looks=$(grep -c '"action"' "$dir/out.jsonl")
# OPENBLAS_* are set on this machine for old OpenBLAS builds and slow a current numpy.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/backtest/fixed_judge_scipy.py "$dir" "$n" \
    "$seq_s" "$looks" "$fix_s" "$fix_looks"
