//! Times Mann-Whitney U (alone and with the Hodges-Lehmann shift and interval) and KS on
//! 10^6 vs 10^6 samples read from two files (one number per line), reporting the median of several runs as JSON; `bench/stats/compare.py` runs it
//! beside scipy on the very same numbers.

use std::time::Instant;

use canary_gate_core::stats::{Alternative, ks_2samp, mann_whitney_u, mann_whitney_with_shift};

fn read(path: &str) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: time-stats CANARY_FILE BASELINE_FILE [REPS]");
        std::process::exit(2);
    }
    let (c, b) = (read(&args[1]), read(&args[2]));
    let reps = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut p = (0.0, 0.0);
    let mwu = median_seconds(reps, || {
        p.0 = mann_whitney_u(&c, &b, Alternative::TwoSided).map_or(f64::NAN, |r| r.p_value);
    });
    let with_shift = median_seconds(reps, || {
        std::hint::black_box(mann_whitney_with_shift(&c, &b, Alternative::TwoSided, 0.95)).ok();
    });
    let ks = median_seconds(reps, || {
        p.1 = ks_2samp(&c, &b, Alternative::TwoSided).map_or(f64::NAN, |r| r.p_value);
    });
    println!(
        "{{\"mann_whitney_u\": {mwu}, \"mwu_with_shift\": {with_shift}, \"ks_2samp\": {ks}, \"p_mwu\": {}, \"p_ks\": {}}}",
        p.0, p.1
    );
}
