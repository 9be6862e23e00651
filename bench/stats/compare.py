#!/usr/bin/env python3
"""Mann-Whitney U and KS on 10^6 vs 10^6 samples: canary-gate against scipy in the same run,
on the same numbers (medians of several repetitions). Prints two Markdown tables: the tests
alone (in process, samples already in memory), and whole processes on the same files —
`canary-gate test ...` against a python3 that loads the files with numpy and calls scipy.

Run via bench/stats/run.sh (it builds the timing binary and the CLI first).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

REPS = 5

# The whole-process peer of `canary-gate test`: read both files, run the test, print JSON.
SCIPY_PROCESS = """
import json, sys
import numpy as np
from scipy import stats
c, b = np.loadtxt(sys.argv[2]), np.loadtxt(sys.argv[3])
r = getattr(stats, sys.argv[1])(c, b)
print(json.dumps({"statistic": float(r.statistic), "p_value": float(r.pvalue)}))
"""


def median_time(f):
    t = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return sorted(t)[REPS // 2]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def whole_process(cli, cp, bp):
    """Median wall time of each command, the CLI and scipy alternating, and their outputs."""
    cases = [("Mann-Whitney U", "mann-whitney-u", "mannwhitneyu"),
             ("Kolmogorov-Smirnov", "kolmogorov-smirnov", "ks_2samp")]
    rows = []
    for name, ours, theirs in cases:
        ours_cmd = [cli, "test", ours, "--canary", str(cp), "--baseline", str(bp)]
        theirs_cmd = [sys.executable, "-c", SCIPY_PROCESS, theirs, str(cp), str(bp)]
        out = {}
        times = {"ours": [], "theirs": []}
        for _ in range(REPS):
            for key, cmd in (("ours", ours_cmd), ("theirs", theirs_cmd)):
                t0 = time.perf_counter()
                out[key] = run_json(cmd)
                times[key].append(time.perf_counter() - t0)
        r, p = (sorted(times[k])[REPS // 2] for k in ("ours", "theirs"))
        rows.append((name, r, p, out["ours"]["p_value"], out["theirs"]["p_value"],
                     out["ours"].get("hodges_lehmann")))
    return rows


def main():
    binary, cli = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(7)
    c = rng.lognormal(np.log(44), 0.9, 1_000_000)
    b = rng.lognormal(np.log(42), 0.9, 1_000_000)
    with tempfile.TemporaryDirectory() as d:
        cp, bp = Path(d) / "c.txt", Path(d) / "b.txt"
        np.savetxt(cp, c, fmt="%.17g")
        np.savetxt(bp, b, fmt="%.17g")
        rust = run_json([binary, str(cp), str(bp), str(REPS)])
        processes = whole_process(cli, cp, bp)
    res = {}
    py_mwu = median_time(lambda: res.__setitem__("mwu", stats.mannwhitneyu(c, b).pvalue))
    py_ks = median_time(lambda: res.__setitem__("ks", stats.ks_2samp(c, b).pvalue))
    print(f"10^6 vs 10^6 log-normal samples, median of {REPS} runs, scipy {scipy.__version__}, numpy {np.__version__}")
    print()
    print("In process (samples in memory):")
    print()
    print("| test | canary-gate (s) | scipy (s) | ratio canary-gate / scipy | p-values (canary-gate, scipy) |")
    print("| --- | --- | --- | --- | --- |")
    for name, r, p, pr, pp in [("Mann-Whitney U", rust["mann_whitney_u"], py_mwu, rust["p_mwu"], res["mwu"]),
                                ("Mann-Whitney U + Hodges-Lehmann interval", rust["mwu_with_shift"], py_mwu,
                                 rust["p_mwu"], res["mwu"]),
                                ("Kolmogorov-Smirnov", rust["ks_2samp"], py_ks, rust["p_ks"], res["ks"])]:
        print(f"| {name} | {r:.3f} | {p:.3f} | {r / p:.2f} | {pr:.6g}, {pp:.6g} |")
    print()
    print("Whole process on the same files (`canary-gate test ...` vs python3 + numpy.loadtxt + scipy):")
    print()
    print("| test | canary-gate (s) | scipy (s) | ratio canary-gate / scipy | p-values (canary-gate, scipy) |")
    print("| --- | --- | --- | --- | --- |")
    for name, r, p, pr, pp, _ in processes:
        print(f"| {name} | {r:.3f} | {p:.3f} | {r / p:.2f} | {pr:.6g}, {pp:.6g} |")
    print()
    print(f"canary-gate's Hodges-Lehmann shift: {json.dumps(processes[0][5])}")


if __name__ == "__main__":
    main()
