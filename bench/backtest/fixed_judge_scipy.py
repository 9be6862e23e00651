#!/usr/bin/env python3
"""A scipy re-implementation of canary-gate's fixed-horizon judge, timed on the same
timelines as `canary-gate backtest` (called by run.sh, which passes the Rust timings).

Per look: accumulate the phase's observations (phases of 5 looks, as the demo config's
300 s phases), then for latency Mann-Whitney U (greater) plus p50/p95/p99, and for errors the
chi-square test with Yates' correction — what the Rust judge computes at each look.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats


def judge_timeline(path):
    looks = 0
    phase_base, phase_can = [], []
    base_err = can_err = base_n = can_n = 0
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if i % 5 == 0:
            phase_base, phase_can = [], []
            base_err = can_err = base_n = can_n = 0
        iv = json.loads(line)
        phase_base += iv["baseline"]["latency"]
        phase_can += iv["canary"]["latency"]
        base_err += iv["baseline"]["errors"]["events"]
        base_n += iv["baseline"]["errors"]["total"]
        can_err += iv["canary"]["errors"]["events"]
        can_n += iv["canary"]["errors"]["total"]
        looks += 1
        if phase_can and phase_base:
            stats.mannwhitneyu(phase_can, phase_base, alternative="greater")
            np.percentile(phase_can, [50, 95, 99])
            np.percentile(phase_base, [50, 95, 99])
        table = [[can_err, can_n - can_err], [base_err, base_n - base_err]]
        try:
            stats.chi2_contingency(table)
        except ValueError:
            pass
    return looks


def main():
    d, n = Path(sys.argv[1]), int(sys.argv[2])
    seq_s, seq_looks, fix_s, fix_looks = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    t0 = time.perf_counter()
    looks = sum(judge_timeline(d / f"t{i}.jsonl") for i in range(1, n + 1))
    py_s = time.perf_counter() - t0
    print(f"{n} timelines, 15 one-minute looks each at 50 requests/s")
    print("| judge | looks | total (s) | per look (ms) | ratio to scipy |")
    print("| --- | --- | --- | --- | --- |")
    py_ms = 1000 * py_s / looks
    for name, s, k in [("canary-gate backtest, sequential (default)", seq_s, seq_looks),
                       ("canary-gate backtest, fixed-horizon", fix_s, fix_looks)]:
        ms = 1000 * s / k
        print(f"| {name} | {k} | {s:.2f} | {ms:.3f} | {ms / py_ms:.3f} |")
    print(f"| scipy fixed-horizon judge (Python) | {looks} | {py_s:.2f} | {py_ms:.3f} | 1.000 |")


if __name__ == "__main__":
    main()
