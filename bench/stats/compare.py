#!/usr/bin/env python3
"""Mann-Whitney U and KS on 10^6 vs 10^6 samples: canary-gate against scipy in the same run,
on the same numbers (medians of several repetitions). Prints a Markdown table.

Run via bench/stats/run.sh (it builds the timing binary first).
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

REPS = 5


def median_time(f):
    t = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return sorted(t)[REPS // 2]


def main():
    binary = sys.argv[1]
    rng = np.random.default_rng(7)
    c = rng.lognormal(np.log(44), 0.9, 1_000_000)
    b = rng.lognormal(np.log(42), 0.9, 1_000_000)
    with tempfile.TemporaryDirectory() as d:
        cp, bp = Path(d) / "c.txt", Path(d) / "b.txt"
        np.savetxt(cp, c, fmt="%.17g")
        np.savetxt(bp, b, fmt="%.17g")
        rust = json.loads(subprocess.run([binary, str(cp), str(bp), str(REPS)], check=True,
                                         capture_output=True, text=True).stdout)
    res = {}
    py_mwu = median_time(lambda: res.__setitem__("mwu", stats.mannwhitneyu(c, b).pvalue))
    py_ks = median_time(lambda: res.__setitem__("ks", stats.ks_2samp(c, b).pvalue))
    print(f"10^6 vs 10^6 log-normal samples, median of {REPS} runs, scipy {scipy.__version__}, numpy {np.__version__}")
    print("| test | canary-gate (s) | scipy (s) | ratio canary-gate / scipy | p-values (canary-gate, scipy) |")
    print("| --- | --- | --- | --- | --- |")
    for name, r, p, pr, pp in [("Mann-Whitney U", rust["mann_whitney_u"], py_mwu, rust["p_mwu"], res["mwu"]),
                                ("Kolmogorov-Smirnov", rust["ks_2samp"], py_ks, rust["p_ks"], res["ks"])]:
        print(f"| {name} | {r:.3f} | {p:.3f} | {r / p:.2f} | {pr:.6g}, {pp:.6g} |")


if __name__ == "__main__":
    main()
