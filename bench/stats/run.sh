#!/usr/bin/env bash
# Mann-Whitney U and KS on 10^6 vs 10^6 samples, canary-gate vs scipy in one run: the tests in
# process, and `canary-gate test` against a python3 + scipy process on the same files.
# Criterion numbers: cargo bench -p canary-gate-bench
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release -p canary-gate-bench --bin time-stats -p canary-gate-cli --bin canary-gate
# OPENBLAS_* are set on this machine for old OpenBLAS builds; they slow a current numpy.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${PYTHON:-python3}" bench/stats/compare.py \
    target/release/time-stats target/release/canary-gate
