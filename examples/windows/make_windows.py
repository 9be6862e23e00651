#!/usr/bin/env python3
"""Writes the example analysis windows used by the README and the CLI tests.

Latencies are log-normal with the seed's figures (baseline p50 42 ms, p95 185 ms); the
regression window doubles p95 (about 387 ms) and raises errors from ~0.12 % to 3.2 %.
Deterministic: standard-library random with fixed seeds, values rounded to 0.1 ms.
"""
import json
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIGMA = math.log(185 / 42) / 1.6448536269514722  # p95/p50 ratio of the seed's baseline


def latencies(rng, n, median):
    return [round(rng.lognormvariate(math.log(median), SIGMA), 1) for _ in range(n)]


def cpu(rng, n, mean):
    return [round(rng.gauss(mean, 2.0), 1) for _ in range(n)]


def write(name, window):
    (HERE / name).write_text(json.dumps(window, separators=(",", ":")) + "\n")


def main():
    rng = random.Random(20261122)
    write("regression.json", {
        "phase": 2,
        "elapsed_seconds": 300,
        "baseline": {
            "response-latency": latencies(rng, 2812, 42),
            "error-rate": {"events": 4, "total": 2812},
            "cpu-usage": cpu(rng, 5, 58),
        },
        "canary": {
            "response-latency": latencies(rng, 2845, 42 * 387 / 185),
            "error-rate": {"events": 91, "total": 2845},
            "cpu-usage": cpu(rng, 5, 62),
        },
    })
    write("healthy.json", {
        "phase": 2,
        "elapsed_seconds": 300,
        "baseline": {
            "response-latency": latencies(rng, 2812, 42),
            "error-rate": {"events": 4, "total": 2812},
            "cpu-usage": cpu(rng, 5, 58),
        },
        "canary": {
            "response-latency": latencies(rng, 2845, 42),
            "error-rate": {"events": 3, "total": 2845},
            "cpu-usage": cpu(rng, 5, 58),
        },
    })
    write("insufficient.json", {
        "phase": 1,
        "elapsed_seconds": 300,
        "baseline": {
            "response-latency": latencies(rng, 950, 42),
            "error-rate": {"events": 1, "total": 950},
        },
        "canary": {
            "response-latency": latencies(rng, 50, 42),
            "error-rate": {"events": 0, "total": 50},
        },
    })


if __name__ == "__main__":
    main()
